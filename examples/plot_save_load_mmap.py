"""
=========================================
Save, load memory-mapped, and predict
=========================================

:func:`skxmr.save` writes a fitted model as a directory of plain ``.npy``
arrays and one JSON file (no pickle), and :func:`skxmr.load` reads it back
with every array validated. With ``mmap_mode="r"`` the arrays are mapped
from disk instead of read: the model opens at once, and processes serving the
same files share one copy of the weights (``coef_``) in memory; the
beam-search layout is built from ``coef_`` at the first prediction.
"""

# %%
# Fit and save
# ------------
import os
import tempfile
import time

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

import skxmr
from skxmr import XRLinearClassifier
from skxmr.datasets import load_debian_debtags

texts, labels = load_debian_debtags(subset="train", return_X_y=True)
texts, labels = texts[::4], labels[::4]
vectorizer = TfidfVectorizer(sublinear_tf=True, min_df=2, dtype=np.float32)
X = vectorizer.fit_transform(texts)
model = XRLinearClassifier(top_k=5, random_state=0).fit(X, labels)

folder = tempfile.mkdtemp()
path = os.path.join(folder, "debtags-model")
skxmr.save(model, path)
files = sorted(os.listdir(path))
size = sum(os.path.getsize(os.path.join(path, f)) for f in files)
print(f"{len(files)} files, {size / 1e6:.1f} MB: {', '.join(files[:4])}, ...")

# %%
# The JSON file holds the parameters, the format version, a checksum of
# every array file and a digest of the JSON itself.
import json  # noqa: E402

with open(os.path.join(path, "skxmr_model.json"), encoding="utf-8") as f:
    meta = json.load(f)
print(meta["class"], "format", meta["format_version"])
print({k: meta["params"][k] for k in ("beam_size", "top_k", "post_processor")})

# %%
# Load memory-mapped
# ------------------
# ``verify=True`` (the default) checks every checksum; ``verify=False`` opens
# trusted files faster. The loaded model predicts exactly like the saved one.
for verify in (True, False):
    start = time.perf_counter()
    served = skxmr.load(path, mmap_mode="r", verify=verify)
    print(f"load(verify={verify}): {1000 * (time.perf_counter() - start):.1f} ms")


def is_mapped(array):
    """Whether ``array`` is a view of a memory-mapped file."""
    while array is not None:
        if isinstance(array, np.memmap):
            return True
        array = getattr(array, "base", None)
    return False


print("weights memory-mapped:", is_mapped(served.coef_[-1].data),
      "| read-only:", not served.coef_[-1].data.flags.writeable)

test_texts, _ = load_debian_debtags(subset="test", return_X_y=True)
X_test = vectorizer.transform(test_texts)
same = all(np.array_equal(a, b) for a, b in
           zip(served.predict_topk(X_test), model.predict_topk(X_test)))
print("same predictions as the saved model:", same)

# %%
# Serve one query at a time
# -------------------------
# A single CSR row takes a fast path. The vectorizer is not part of the
# skxmr model: keep it beside the model (its vocabulary and ``idf_`` are
# plain data; ``skxmr train`` stores them as JSON and ``.npy`` files).
query = vectorizer.transform(["Python library to read and write PDF files"])
times = []
for _ in range(200):
    start = time.perf_counter()
    labels_idx, scores = served.predict_topk(query)
    times.append(time.perf_counter() - start)
print(f"one query: {1000 * np.median(times):.3f} ms (median of 200)")
for j, s in zip(labels_idx[0], scores[0]):
    print(f"  {served.classes_[j]:<28} {s:.3f}")

# %%
# The 200 single-query times of the memory-mapped model. The first call also
# builds the beam-search layout; it is left out of the histogram and printed.
import matplotlib.pyplot as plt  # noqa: E402

ms = 1000 * np.array(times)
rest = ms[1:]
cut = 4 * np.median(rest)   # the shared machine's rare stalls would squash the plot
print(f"first call: {ms[0]:.2f} ms; {np.sum(rest > cut)} of the other 199 above {cut:.2f} ms")
fig, ax = plt.subplots(figsize=(6.4, 3.4))
ax.hist(rest, bins=40, range=(0, cut))
ax.axvline(np.median(rest), color="k", linestyle="--", label="median")
ax.set_xlabel("one query (ms)")
ax.set_ylabel("calls")
ax.set_title("predict_topk on one row, memory-mapped model")
ax.legend()
fig.tight_layout()
plt.show()

# %%
# Clean up: drop the mapped model before removing its files.
import shutil  # noqa: E402

del served
shutil.rmtree(folder)
