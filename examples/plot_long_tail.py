"""
=================================================
The long tail: P@k against PSP@k
=================================================

Most labels of an extreme classification problem are rare. Precision@k
counts every hit the same, so a model can score well by predicting the
frequent labels only. Propensity-scored precision (PSP@k, Jain et al., KDD
2016) weighs each hit by the inverse propensity of its label
(:func:`skxmr.metrics.label_propensity`), so finding a rare label counts
more. This example compares XR-Linear with a popularity baseline on both
metrics, then breaks the hits down by how frequent the labels are.
"""

# %%
# Model and baseline
# ------------------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import MultiLabelBinarizer

from skxmr import XRLinearClassifier
from skxmr.datasets import load_debian_debtags
from skxmr.metrics import label_propensity, precision_at_k, psprecision_at_k

texts, labels = load_debian_debtags(subset="train", return_X_y=True)
texts, labels = texts[::2], labels[::2]
test_texts, test_labels = load_debian_debtags(subset="test", return_X_y=True)

vectorizer = TfidfVectorizer(sublinear_tf=True, min_df=2)
X = vectorizer.fit_transform(texts)
model = XRLinearClassifier(top_k=5, random_state=0).fit(X, labels)

binarizer = MultiLabelBinarizer(classes=model.classes_, sparse_output=True)
known = set(model.classes_)
Y_train = binarizer.fit_transform(labels)
Y_test = binarizer.transform([[t for t in row if t in known] for row in test_labels])

ranking = model.predict_topk(vectorizer.transform(test_texts))  # (labels, scores)
frequency = np.asarray(Y_train.sum(axis=0)).ravel()  # training rows per label
popular = np.broadcast_to(frequency.astype(float), Y_test.shape)  # same for all rows

# Propensities come from the training labels, as in the Extreme
# Classification Repository's evaluation.
propensity = label_propensity(Y_train)
print("           P@1    P@5  PSP@1  PSP@5")
for name, scores in (("XR-Linear", ranking), ("popularity", popular)):
    row = [precision_at_k(Y_test, scores, k=k) for k in (1, 5)]
    row += [psprecision_at_k(Y_test, scores, k=k, propensity=propensity) for k in (1, 5)]
    print(f"{name:>10} " + " ".join(f"{100 * v:6.2f}" for v in row))

# %%
# Always answering the five most common tags is right for a third of the
# packages at rank 1, but the baseline's PSP@k falls further behind the
# model's than its P@k: PSP exposes a model that ignores the tail.
#
# Hits by label frequency
# -----------------------
# Group the labels by their number of training rows and measure, for each
# group, the share of its relevant (test row, label) pairs found in the top 5.
top5 = ranking[0][:, :5]
rows, cols = Y_test.nonzero()
found_model = (top5[rows] == cols[:, None]).any(axis=1)
popular_top5 = np.argsort(-frequency, kind="stable")[:5]
found_popular = np.isin(cols, popular_top5)

edges = [1, 6, 21, 101, 501, np.inf]
names = ["1-5", "6-20", "21-100", "101-500", "> 500"]
group = np.digitize(frequency[cols], edges) - 1
recall_model = [found_model[group == g].mean() for g in range(len(names))]
recall_popular = [found_popular[group == g].mean() for g in range(len(names))]
n_labels = [int(((frequency >= lo) & (frequency < hi)).sum())
            for lo, hi in zip(edges[:-1], edges[1:])]

for name, count, r_model, r_pop in zip(names, n_labels, recall_model, recall_popular):
    print(f"{name:>8} rows ({count:3d} labels): XR-Linear {r_model:.2f}, "
          f"popularity {r_pop:.2f}")

x = np.arange(len(names))
fig, ax = plt.subplots(figsize=(8, 4))
ax.bar(x - 0.2, recall_model, 0.4, label="XR-Linear")
ax.bar(x + 0.2, recall_popular, 0.4, label="popularity")
ax.set_xticks(x, [f"{n}\n({c} labels)" for n, c in zip(names, n_labels)])
ax.set_xlabel("training rows per label")
ax.set_ylabel("relevant pairs found in the top 5")
ax.set_ylim(0, 1)
ax.legend()
ax.set_title("Recall@5 by label frequency")
fig.tight_layout()
plt.show()

# %%
# The model still finds some of the relevant pairs of labels that have only
# a handful of training rows, where the popularity baseline finds none, and
# its recall grows steadily with the label's frequency: the tail is where
# the room for improvement is, and PSP@k is the metric that shows it.
# Clustering similar labels into the same tree node lets rare labels borrow
# strength from their frequent neighbours.
