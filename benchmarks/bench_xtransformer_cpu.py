"""CPU cost of XTransformerClassifier's encoding options (issue 24), on a
validation split of a text set's *training* texts (never its test texts).

    python -m benchmarks.bench_xtransformer_cpu [--data debian-debtags]
        [--n-fit 2000] [--n-val 800] [--threads 2] [--max-seq-length 128]

Fits, on the same ``--n-fit`` training texts and scored on ``--n-val`` other
training texts: TF-IDF + XRLinearClassifier, the frozen default, the frozen
default with ``quantize=True`` (int8), and a refit of the default with the
embedding cache warm. Prints one line per model: fit and predict seconds,
P@1 and P@5.
"""

import argparse
import os
import time

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main():
    from benchmarks._common import load_texts, text_vectorizer
    from sklearn.pipeline import make_pipeline

    from skxmr import XRLinearClassifier, XTransformerClassifier
    from skxmr._xtransformer._embedding_cache import CACHE
    from skxmr.metrics import precision_at_k

    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="debian-debtags")
    parser.add_argument("--n-fit", type=int, default=2000)
    parser.add_argument("--n-val", type=int, default=800)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--modes", nargs="+",
                        default=["tfidf", "frozen", "frozen-cached", "int8"])
    args = parser.parse_args()
    texts, Y, _, _ = load_texts(args.data)  # training texts only
    rng = np.random.RandomState(0)
    order = rng.permutation(len(texts))
    fit_rows, val_rows = order[:args.n_fit], order[args.n_fit:args.n_fit + args.n_val]
    X_fit, X_val = [texts[i] for i in fit_rows], [texts[i] for i in val_rows]
    Y_fit, Y_val = Y[fit_rows], Y[val_rows]
    keep = np.flatnonzero(np.asarray(Y_fit.sum(axis=0)).ravel() > 0)
    for mode in args.modes:
        if mode == "tfidf":
            model = make_pipeline(text_vectorizer(), XRLinearClassifier(
                n_jobs=args.threads, random_state=0))
        else:
            if mode != "frozen-cached":
                CACHE.clear()
            model = XTransformerClassifier(
                quantize=mode == "int8", max_seq_length=args.max_seq_length,
                n_jobs=args.threads, random_state=0, cache_embeddings=True)
        start = time.perf_counter()
        model.fit(X_fit, Y_fit[:, keep])
        fit_s = time.perf_counter() - start
        if mode == "frozen-cached":
            CACHE.clear()  # predict encodes the new texts as a cold model would
        start = time.perf_counter()
        scores = model.predict_topk(X_val) if mode != "tfidf" else model[-1].predict_topk(
            model[0].transform(X_val))
        predict_s = time.perf_counter() - start
        start = time.perf_counter()
        model.predict_topk([X_val[0] + " again"]) if mode != "tfidf" else None
        one_ms = 1000 * (time.perf_counter() - start)
        truth = Y_val[:, keep]
        print(f"{args.data} {mode}: fit {fit_s:.1f} s, predict {predict_s:.1f} s, "
              f"one query {one_ms:.1f} ms (cached)" if mode == "frozen-cached" else
              f"{args.data} {mode}: fit {fit_s:.1f} s, predict {predict_s:.1f} s, "
              f"one query {one_ms:.1f} ms",
              f"P@1 {100 * precision_at_k(truth, scores, k=1):.2f} "
              f"P@5 {100 * precision_at_k(truth, scores, k=5):.2f}", flush=True)


if __name__ == "__main__":
    main()
