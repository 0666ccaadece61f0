"""
=======================================
Text pipeline: TF-IDF and XR-Linear
=======================================

The basic recipe for text: a :class:`~sklearn.feature_extraction.text.TfidfVectorizer`
followed by :class:`skxmr.XRLinearClassifier` in a scikit-learn pipeline. The
bundled data are Debian package descriptions, each tagged with a few of 594
debtags (``role::program``, ``devel::lang:python``, ...). Labels are given as
lists of tag names; ``predict`` answers in the same form.
"""

# %%
# Load the data
# -------------
# Every 4th training package keeps this example fast; the full training set
# adds about one point of precision.
import time

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MultiLabelBinarizer

from skxmr import XRLinearClassifier
from skxmr.datasets import load_debian_debtags
from skxmr.metrics import topk_report

texts, labels = load_debian_debtags(subset="train", return_X_y=True)
texts, labels = texts[::4], labels[::4]
test_texts, test_labels = load_debian_debtags(subset="test", return_X_y=True)
print(f"{len(texts)} training and {len(test_texts)} test packages")
print(texts[0][:80], "...")
print(labels[0][:4], "...")

# %%
# Fit the pipeline
# ----------------
# Sublinear term frequencies and word bigrams are a strong text
# representation for extreme classification. The classifier clusters the
# labels into a tree, trains one linear model per tree node, and returns the
# ``top_k`` best labels per row.
model = make_pipeline(
    TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2),
    XRLinearClassifier(top_k=5, random_state=0),
)
start = time.perf_counter()
model.fit(texts, labels)
print(f"fit in {time.perf_counter() - start:.1f} s")
classifier = model[-1]
print("label tree:", classifier.tree_)

# %%
# Predict
# -------
# ``predict`` returns the top-5 label tuples, best first.
for text, predicted in zip(test_texts[:3], model.predict(test_texts[:3])):
    print(text.split()[0], "->", ", ".join(predicted))

# %%
# Evaluate
# --------
# ``score`` is precision@1. :func:`skxmr.metrics.topk_report` gives all the
# top-k metrics from one ranking. Test tags never seen in training are
# dropped from the indicator (the model cannot predict them).
print(f"P@1 = {model.score(test_texts, test_labels):.3f}")

classes = classifier.classes_
known = set(classes)
Y_test = MultiLabelBinarizer(classes=classes, sparse_output=True).fit_transform(
    [[tag for tag in row if tag in known] for row in test_labels]
)
scores = model.decision_function(test_texts)  # sparse: top-5 scores per row
report = topk_report(Y_test, scores, ks=(1, 3, 5))
for name in ("P", "nDCG", "PSP"):
    print(f"{name:>5}@1/3/5: " + " ".join(f"{100 * report[f'{name}@{k}']:.1f}"
                                          for k in (1, 3, 5)))

# %%
# The same report as a figure: precision falls with k (most packages have a
# few tags), nDCG weights the top ranks, and PSP rewards the rare tags.
import matplotlib.pyplot as plt  # noqa: E402

ks = (1, 3, 5)
fig, ax = plt.subplots(figsize=(6.4, 3.6))
for name in ("P", "nDCG", "PSP", "R"):
    ax.plot(ks, [100 * report[f"{name}@{k}"] for k in ks], marker="o", label=f"{name}@k")
ax.set_xticks(ks)
ax.set_xlabel("k")
ax.set_ylabel("percent")
ax.set_title("TF-IDF + XRLinearClassifier on the debtags test set")
ax.legend()
fig.tight_layout()
plt.show()
