"""Fine-tuning variants for XTransformerClassifier, scored by the ranker (issue 7).

    python benchmarks/sweep_xtransformer_fine_tune.py --data ../shared/data/reuters21578-modapte \\
        --steps 600 --learning-rate 5e-5 --probe [--residual] --weights 0.5 0.7

Fine-tunes all-MiniLM-L6-v2 (64 tokens, batches of 16, ``--steps`` in all) with
``skxmr._fine_tune.fine_tune_encoder`` on the tree of ``XRLinearClassifier(
random_state=--seed)`` fitted on the TF-IDF, embeds the train and test texts
with the fine-tuned encoder, and trains ``XRLinearClassifier`` on [weight *
embeddings, TF-IDF] on that same tree for each of ``--weights``: the numbers
compare directly with ``frozen:WEIGHT:SEED`` of sweep_xtransformer_ranker.py.

- ``--probe``: linear probe, then fine-tune: every level's head starts from a
  head fitted on the frozen embeddings (cached by sweep_xtransformer_ranker.py).
- ``--residual``: the head scores are added to the margins of a TF-IDF
  XR-Linear model fitted on the other half of the training rows
  (``skxmr._fine_tune.cross_fitted_margins``), so the encoder learns what the
  TF-IDF misses.

``XTransformerClassifier(fine_tune=True)`` does both by default
(``fine_tune_probe``, ``fine_tune_residual``).
"""

import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_xtransformer import load_texts
from sweep_xtransformer_ranker import cached_features, sweep_parser


def main():
    parser = sweep_parser(__doc__)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--probe", action="store_true")
    parser.add_argument("--residual", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--weights", type=float, nargs="+", default=[0.7])
    args = parser.parse_args()

    import torch

    from skxmr import XRLinearClassifier, XTransformerClassifier
    from skxmr._encoder import load_encoder, set_max_seq_length, torch_threads
    from skxmr._fine_tune import cross_fitted_margins, fine_tune_encoder
    from skxmr.metrics import topk_report

    args.cache.mkdir(parents=True, exist_ok=True)
    name = args.data.name
    texts, Y, test_texts, Y_test = load_texts(args.data)
    X, X_test, E, _ = cached_features(name, texts, test_texts, args.cache, 64, args.threads)
    tree = XRLinearClassifier(random_state=args.seed, n_jobs=args.threads).fit(X, Y).tree_
    tag = (f"ft{args.steps}_{args.learning_rate}" + ("_probe" if args.probe else "")
           + ("_residual" if args.residual else ""))
    offsets = (cross_fitted_margins(X, Y, tree, XRLinearClassifier(n_jobs=args.threads),
                                    np.random.RandomState(args.seed + 1))
               if args.residual else None)
    with torch_threads(args.threads):
        torch.manual_seed(args.seed)
        encoder = load_encoder(None, "cpu")
        set_max_seq_length(encoder, 64)
        start = time.perf_counter()
        history = fine_tune_encoder(
            encoder, texts, Y, tree, batch_size=16, max_steps=args.steps,
            learning_rate=args.learning_rate, probe_embeddings=E if args.probe else None,
            node_offsets=offsets, rng=np.random.RandomState(args.seed))
        print(f"{tag}: fine-tuned in {time.perf_counter() - start:.0f} s: {history}",
              flush=True)
        tuned = [encoder.encode(split, batch_size=32, convert_to_numpy=True,
                                normalize_embeddings=True).astype(np.float32)
                 for split in (texts, test_texts)]
    for split, values in zip(("trn", "tst"), tuned):
        np.save(args.cache / f"{name}.{split}.{tag}.npy", values)
    for weight in args.weights:
        combine = XTransformerClassifier(embedding_weight=weight)._combine
        model = XRLinearClassifier(indexer=tree, random_state=args.seed,
                                   n_jobs=args.threads).fit(combine(tuned[0], X), Y)
        r = topk_report(Y_test, model.decision_function(combine(tuned[1], X_test)),
                        ks=(1, 3, 5))
        print(f"{tag} weight {weight}: "
              + " / ".join(f"{100 * r[k]:.2f}" for k in ("P@1", "P@3", "P@5")), flush=True)


if __name__ == "__main__":
    main()
