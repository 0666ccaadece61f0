"""CPU cost and accuracy of XTransformerClassifier's settings (issue 24): TF-IDF
XR-Linear against the frozen encoder with fixed or "auto" weights, in float or
int8, on the validation sets of ``benchmarks/make_validation_sets.py`` (or on a
validation split of a shared set's *training* texts).

    python -m benchmarks.bench_xtransformer_cpu --data /work/valsets/valid-suggests
        [--split test] [--modes tfidf frozen refit auto int8 int8-auto]
        [--max-seq-length 128] [--threads 2] [--out FILE.jsonl]

``--split test`` scores on the folder's own test split: use it only for sets that
are never reported on (the validation sets). ``--split validation`` (default)
fits on ``--n-fit`` training texts and scores on ``--n-val`` other training texts.

Modes, all fitted on the same texts with ``random_state=0`` and the same
``--threads``, in the order given, in one process (the embedding cache is
process-wide, so the first fit of an encoder encodes and later ones find the
embeddings cached):

- ``tfidf``: ``make_pipeline(TF-IDF, XRLinearClassifier())`` (``_common.text_vectorizer``);
- ``frozen``: ``XTransformerClassifier()`` at its fixed weights (0.7, 20, 0.25);
- ``refit``: the same fitted again (the cache warm: the cost of a refit);
- ``auto``: ``embedding_weight=n_neighbors=neighbor_weight="auto"``;
- ``int8``, ``int8-auto``: the same two with ``quantize=True``;
- ``frozen-64``, ``int8-64``, ``int8-64-auto``: ``max_seq_length=64`` instead of
  ``--max-seq-length``;
- ``nonn``: ``n_neighbors=0`` (no neighbour votes), float.

Each line: fit and predict seconds, the seconds of encoding inside each (timed
around the encoder calls), one-query latency (median of 10 new texts, one a call), P@1 and P@5, the
paired standard error of the P@1 and P@5 differences to the first
XTransformer mode (per-row precisions, std / sqrt(n)), and the weights used.

``--encode-speed N`` only times the encoder on N training texts: texts per
second (wall-clock and per CPU second) in float and int8 at 128 and 64 tokens,
interleaved, best of 2 rounds.
"""

import json
import os
import time

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

MODES = ("tfidf", "frozen", "refit", "auto", "int8", "int8-auto", "frozen-64", "int8-64",
         "int8-64-auto", "nonn")


class EncodeTimer:
    """Wraps the embedding cache's encoder calls and adds up their seconds."""

    def __init__(self, cache):
        self.seconds, self.cache = 0.0, cache
        embed = cache.embed

        def timed_embed(key, texts, encode):
            def timed_encode(batch):
                start = time.perf_counter()
                try:
                    return encode(batch)
                finally:
                    self.seconds += time.perf_counter() - start
            return embed(key, texts, timed_encode)

        cache.embed = timed_embed

    def lap(self):
        seconds, self.seconds = self.seconds, 0.0
        return seconds


def row_precisions(Y_true, labels, k):
    """Per-row precision@k of top-k label indices (-1 padding) against CSR ``Y_true``."""
    Y = Y_true.tocsr()
    hits = np.zeros(Y.shape[0])
    for i in range(Y.shape[0]):
        truth = set(Y.indices[Y.indptr[i]:Y.indptr[i + 1]].tolist())
        hits[i] = sum(1 for j in labels[i, :k] if j >= 0 and j in truth)
    return hits / k


def build(mode, args):
    from sklearn.pipeline import make_pipeline

    from benchmarks._common import text_vectorizer
    from skxmr import XRLinearClassifier, XTransformerClassifier
    if mode == "tfidf":
        return make_pipeline(text_vectorizer(),
                             XRLinearClassifier(n_jobs=args.threads, random_state=0))
    params = dict(quantize=mode.startswith("int8"), n_jobs=args.threads, random_state=0,
                  max_seq_length=64 if mode.endswith("-64") else args.max_seq_length,
                  embedding_weight=0.7, n_neighbors=20, neighbor_weight=0.25)
    if mode.endswith("-64-auto"):
        params.update(max_seq_length=64)
    if mode.endswith("auto"):
        params.update(embedding_weight="auto", n_neighbors="auto", neighbor_weight="auto")
    if mode == "nonn":
        params.update(n_neighbors=0)
    return XTransformerClassifier(**params)


def encode_speed(texts, threads, rounds=2):
    """Texts per second of the default encoder in float and int8, at 128 and 64
    tokens, on the same texts: the four variants interleaved, ``rounds`` times
    (so that the drift of a shared machine hits them alike); the best round, by
    wall-clock and by CPU time of this process (texts per CPU second: on one
    thread, the measure that a busy machine disturbs least)."""
    import torch

    from skxmr._xtransformer._encoder import load_encoder, quantized_encoder

    torch.set_num_threads(threads)
    float_encoder = load_encoder(None, "cpu")
    variants = {"float": float_encoder, "int8": quantized_encoder(float_encoder)}
    best = {}
    for _ in range(rounds):
        for length in (128, 64):
            for name, encoder in variants.items():
                encoder.max_seq_length = length
                start, cpu = time.perf_counter(), time.process_time()
                encoder.encode(texts, batch_size=32, convert_to_numpy=True,
                               normalize_embeddings=True)
                for clock, begun in (("wall", start), ("cpu", cpu)):
                    now = time.perf_counter() if clock == "wall" else time.process_time()
                    key = f"{name}-{length} {clock}"
                    best[key] = max(best.get(key, 0), len(texts) / (now - begun))
    return best


def main():
    from benchmarks._common import data_folder, load_texts, parser_for
    from skxmr._xtransformer._embedding_cache import CACHE

    parser = parser_for(__doc__)
    parser.add_argument("--data", default="debian-debtags")
    parser.add_argument("--split", choices=["validation", "test"], default="validation")
    parser.add_argument("--n-fit", type=int, default=2000)
    parser.add_argument("--n-val", type=int, default=800)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--modes", nargs="+", default=["tfidf", "frozen", "refit", "int8"],
                        choices=MODES)
    parser.add_argument("--out", default=None, help="append one JSON line per mode")
    parser.add_argument("--encode-speed", type=int, default=0, metavar="N",
                        help="only time the encoder (float/int8, 128/64 tokens) on the "
                             "first N training texts, interleaved, and exit")
    args = parser.parse_args()
    texts, Y, test_texts, Y_test = load_texts(args.data)
    if args.encode_speed:
        rates = encode_speed(texts[:args.encode_speed], args.threads)
        print(json.dumps({"dataset": data_folder(args.data).name, "texts":
                          args.encode_speed, "threads": args.threads,
                          "texts_per_s": rates, "load": os.getloadavg()[0]}))
        return
    if args.split == "validation":  # training texts only
        order = np.random.RandomState(0).permutation(len(texts))
        fit_rows, val_rows = order[:args.n_fit], order[args.n_fit:args.n_fit + args.n_val]
        X_fit, X_val = [texts[i] for i in fit_rows], [texts[i] for i in val_rows]
        Y_fit, Y_val = Y[fit_rows], Y[val_rows]
    else:
        X_fit, Y_fit, X_val, Y_val = texts, Y, test_texts, Y_test
    keep = np.flatnonzero(np.asarray(Y_fit.sum(axis=0)).ravel() > 0)
    Y_fit, truth = Y_fit[:, keep].tocsr(), Y_val[:, keep].tocsr()
    timer = EncodeTimer(CACHE)
    name = data_folder(args.data).name
    print(f"{name}: {len(X_fit)} fit texts, {len(X_val)} scored ({args.split}), "
          f"{len(keep)} labels; max_seq_length {args.max_seq_length}; threads "
          f"{args.threads}; load {os.getloadavg()[0]:.2f}", flush=True)
    reference = None
    for mode in args.modes:
        model = build(mode, args)
        timer.lap()
        start = time.perf_counter()
        model.fit(X_fit, Y_fit)
        fit_s = time.perf_counter() - start
        fit_encode_s = timer.lap()
        start = time.perf_counter()
        if mode == "tfidf":
            labels, _ = model[-1].predict_topk(model[0].transform(X_val), k=5)
        else:
            labels, _ = model.predict_topk(X_val, k=5)
        predict_s = time.perf_counter() - start
        predict_encode_s = timer.lap()
        one_ms = []
        for i in range(10):  # new texts, one a call: the median latency
            query = [f"a new text {i} about a tool that converts files, {time.time()}"]
            start = time.perf_counter()
            if mode == "tfidf":
                model[-1].predict_topk(model[0].transform(query), k=5)
            else:
                model.predict_topk(query, k=5)
            one_ms.append(1000 * (time.perf_counter() - start))
        one_ms = float(np.median(one_ms))
        timer.lap()
        p1, p5 = row_precisions(truth, labels, 1), row_precisions(truth, labels, 5)
        row = {"dataset": name, "split": args.split, "mode": mode, "n_fit": len(X_fit),
               "n_scored": len(X_val), "n_labels": len(keep), "threads": args.threads,
               "max_seq_length": getattr(model, "max_seq_length", None),
               "fit_s": fit_s, "fit_encode_s": fit_encode_s, "predict_s": predict_s,
               "predict_encode_s": predict_encode_s, "one_query_ms": one_ms,
               "P@1": 100 * p1.mean(), "P@5": 100 * p5.mean(),
               "load": os.getloadavg()[0]}
        if mode != "tfidf":
            row["weights"] = [model.embedding_weight_, model.n_neighbors_,
                              model.neighbor_weight_]
            row["weight_search"] = [[list(s), round(100 * v, 2)]
                                    for s, v in model.weight_search_]
        if mode != "tfidf" and reference is None:
            reference = (p1, p5)
        if reference is not None:
            row["dP@1_se"] = 100 * np.std(p1 - reference[0]) / np.sqrt(len(p1))
            row["dP@5_se"] = 100 * np.std(p5 - reference[1]) / np.sqrt(len(p5))
        print(json.dumps(row), flush=True)
        if args.out:
            with open(args.out, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
