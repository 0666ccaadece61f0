"""
=================================================
A catalogue that grows: adding labels
=================================================

New labels arrive after a model is fitted. ``add_labels`` puts the new
labels in new leaf clusters, next to the leaves that the model's beam search
reaches for their rows, and trains their cluster and linear models there,
without refitting the rest. This example
fits a model on 70% of the labels, adds the rest in three rounds, and
compares, after each round, the precision on the added labels with that of a
model refitted from scratch on the same labels.
"""

# %%
# Data: a synthetic catalogue, the labels in the order they "arrive"
# ------------------------------------------------------------------
import matplotlib.pyplot as plt
import numpy as np
import scipy.sparse as sp

from skxmr import XRLinearClassifier
from skxmr.datasets import make_xmc_classification
from skxmr.metrics import precision_at_k

X, Y = make_xmc_classification(3000, 500, 300, random_state=0)
Y = sp.csr_matrix(Y)
X_train, Y_train, X_test, Y_test = X[:2400], Y[:2400], X[2400:], Y[2400:]
order = np.random.RandomState(0).permutation(Y.shape[1])
Y_train, Y_test = Y_train[:, order], Y_test[:, order]
stages = [210, 240, 270, 300]  # labels known after each round


def precision_on(model, columns):
    """P@1 on the test rows with a label in ``columns``, ranking only those."""
    labels, scores = model.predict_topk(X_test, k=30)
    keep = np.isin(labels, columns)
    first = np.argmax(keep, axis=1)
    best = np.where(keep.any(axis=1), labels[np.arange(len(labels)), first], -1)
    rows = np.flatnonzero(np.asarray(Y_test[:, columns].sum(axis=1)).ravel())
    return precision_at_k(Y_test[rows], (best[rows, None], np.ones((rows.size, 1))),
                          k=1)


# %%
# Add the labels in rounds, and refit for comparison
# --------------------------------------------------
model = XRLinearClassifier(random_state=0).fit(X_train, Y_train[:, :stages[0]])
added, refit = [], []
for known in stages[1:]:
    model.add_labels(X_train, Y_train[:, :known])
    reference = XRLinearClassifier(random_state=0).fit(X_train, Y_train[:, :known])
    columns = np.arange(stages[0], known)
    added.append(precision_on(model, columns))
    refit.append(precision_on(reference, columns))
    print(f"{known} labels: P@1 of the added labels {added[-1]:.3f} "
          f"(refit: {refit[-1]:.3f}); tree {model.tree_}")

# %%
# The added labels against a refit
# --------------------------------
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.plot(stages[1:], refit, "o-", label="refit from scratch")
ax.plot(stages[1:], added, "s-", label="add_labels")
ax.set_xlabel("labels in the catalogue")
ax.set_ylabel("P@1 of the added labels")
ax.legend()
fig.tight_layout()
plt.show()
