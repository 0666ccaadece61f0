"""
=============================================
Model selection with a P@k scorer
=============================================

:func:`skxmr.metrics.make_topk_scorer` turns any top-k metric into a scorer for
:class:`~sklearn.model_selection.GridSearchCV`. The indexer is a parameter of
the classifier, so the tree shape is tuned like any other hyper-parameter
(``indexer__max_leaf_size``).
"""

# %%
# Features
# --------
# The TF-IDF features are computed once, outside the search, to keep the
# example fast (a pipeline inside the search would refit the vectorizer on
# every fold, which is the right choice when its parameters are tuned too).
import warnings

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import GridSearchCV
from sklearn.preprocessing import MultiLabelBinarizer

from skxmr import LabelIndexer, XRLinearClassifier
from skxmr.datasets import load_debian_debtags
from skxmr.metrics import make_topk_scorer

texts, labels = load_debian_debtags(subset="train", return_X_y=True)
texts, labels = texts[::8], labels[::8]
X = TfidfVectorizer(sublinear_tf=True, min_df=2).fit_transform(texts)
# scikit-learn's cross-validation helpers inspect ``y`` and reject lists of
# label lists, so the labels become a sparse indicator matrix here (the
# classifier accepts both).
binarizer = MultiLabelBinarizer(sparse_output=True)
Y = binarizer.fit_transform(labels)
print(f"X: {X.shape[0]} rows x {X.shape[1]} features; Y: {Y.shape[1]} labels")

# Some rare tags have no row in a training fold: the indexer warns that their
# label vector is zero and places them by balance alone. Expected here.
warnings.filterwarnings("ignore", message=".*all-zero vector")

# %%
# The search
# ----------
# Two scorers: precision@3 (the one used to pick the best model) and
# propensity-scored precision@3, which rewards the rare labels.
search = GridSearchCV(
    XRLinearClassifier(LabelIndexer(random_state=0), top_k=5, random_state=0),
    param_grid={"C": [0.5, 2.0], "indexer__max_leaf_size": [20, 100]},
    scoring={"P@3": make_topk_scorer("precision", k=3),
             "PSP@3": make_topk_scorer("psprecision", k=3)},
    refit="P@3",
    cv=3,
)
search.fit(X, Y)
print("best:", search.best_params_, f"P@3 = {search.best_score_:.3f}")

# %%
# All candidates, best first.
res = search.cv_results_
print("     C  max_leaf_size   P@3  PSP@3  fit (s)")
for i in np.argsort(res["rank_test_P@3"]):
    print(f"{res['param_C'][i]:6.1f}  {res['param_indexer__max_leaf_size'][i]:13d}"
          f"  {res['mean_test_P@3'][i]:.3f}  {res['mean_test_PSP@3'][i]:.3f}"
          f"  {res['mean_fit_time'][i]:7.2f}")

# %%
# The same table as a figure: each candidate's mean cross-validated P@3 and
# PSP@3 (three folds), best P@3 first.
import matplotlib.pyplot as plt  # noqa: E402

order = np.argsort(res["rank_test_P@3"])
names = [f"C={res['param_C'][i]:g}\nleaf<={res['param_indexer__max_leaf_size'][i]}"
         for i in order]
x = np.arange(len(order))
fig, ax = plt.subplots(figsize=(6.4, 3.6))
for offset, key in ((-0.2, "P@3"), (0.2, "PSP@3")):
    ax.bar(x + offset, res[f"mean_test_{key}"][order], width=0.4,
           yerr=res[f"std_test_{key}"][order], capsize=3, label=key)
ax.set_xticks(x, names)
ax.set_ylabel("mean over 3 folds")
ax.set_title("GridSearchCV candidates, best P@3 first")
ax.legend(loc="lower right")
fig.tight_layout()
plt.show()
