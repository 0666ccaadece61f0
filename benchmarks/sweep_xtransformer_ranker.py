"""Ranker-only sweep for XTransformerClassifier on cached embeddings (issue 7).

    python benchmarks/sweep_xtransformer_ranker.py --data ../shared/data/debian-deps \\
        tfidf:0 frozen:0.7:0 frozen:0.7:0:negative_sampling=tfn+man ...

Encoding is most of XTransformerClassifier's cost, so the ranker's settings are
compared here on embeddings computed once: all-MiniLM-L6-v2 (the default encoder,
offline), ``--max-seq-length`` tokens, L2-normalised, cached in ``--cache`` with
the benchmark's TF-IDF (float32). Each configuration trains one
``XRLinearClassifier(n_jobs=--threads)`` and prints P@1/3/5 on the test split:

- ``tfidf:SEED[:k=v,...]``: on the TF-IDF, on the tree of ``XRLinearClassifier(
  random_state=SEED)`` fitted on the TF-IDF (what ``XTransformerClassifier`` does
  with its preliminary tree);
- ``frozen:WEIGHT:SEED[:k=v,...]``: on [WEIGHT * embeddings, TF-IDF], on the same
  TF-IDF tree of that seed (``own`` instead of a seed: the tree rebuilt on the
  concatenation, ``rebuild_tree=True``).

- ``neighbors:WEIGHT:K:BETA:SEED[:k=v,...]``: as ``frozen``, plus the block of
  neighbour label votes of ``XTransformerClassifier(n_neighbors=K,
  neighbor_weight=BETA)``: [WEIGHT * embeddings, TF-IDF, BETA * votes of the K
  nearest training texts] (training rows leave themselves out);
- ``levels:W1,W2,...:SEED``: each level of the TF-IDF tree of that seed trained
  on [Wt * embeddings, TF-IDF] with its own weight Wt (0: the TF-IDF alone),
  one weight per level. With the default ``negative_sampling="tfn"`` a level's
  training does not depend on the levels above it, so this is the per-level
  weights of models trained once per distinct weight, spliced together.

``--embeddings TAG`` replaces the frozen embeddings with those saved as
``<data>.{trn,tst}.TAG.npy`` in ``--cache`` (sweep_xtransformer_fine_tune.py
saves the fine-tuned ones so, e.g. ``ft600_5e-05_probe_residual``).

``k=v`` pairs are further ``XRLinearClassifier`` parameters (``beam_size=30``,
``negative_sampling=tfn+man``, ``threshold=0.03``...). The scores of each
configuration are saved (``--cache``/S.<data>.<config>.npz) so that blends of
configurations can be scored afterwards with ``--blend A B``.
"""

import argparse
import os
import pickle
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_xtransformer import load_texts


def cached_features(name, texts, test_texts, cache, max_seq_length, threads):
    """(TF-IDF train, TF-IDF test, embeddings train, embeddings test), cached."""
    tfidf_path = cache / f"{name}.tfidf.pkl"
    if not tfidf_path.exists():
        from skxmr._text import default_text_vectorizer

        vectorizer = default_text_vectorizer()
        train = sp.csr_matrix(vectorizer.fit_transform(texts), dtype=np.float32)
        test = sp.csr_matrix(vectorizer.transform(test_texts), dtype=np.float32)
        with open(tfidf_path, "wb") as f:
            pickle.dump((train, test), f)
    with open(tfidf_path, "rb") as f:
        tfidf = pickle.load(f)
    embeddings = []
    for split, split_texts in (("trn", texts), ("tst", test_texts)):
        path = cache / f"{name}.{split}.emb{max_seq_length}.npy"
        if not path.exists():
            from skxmr._encoder import load_encoder, set_max_seq_length, torch_threads

            with torch_threads(threads):
                encoder = load_encoder(None, "cpu")
                set_max_seq_length(encoder, max_seq_length)
                start = time.perf_counter()
                values = encoder.encode(split_texts, batch_size=32, convert_to_numpy=True,
                                        normalize_embeddings=True)
            print(f"encoded {name} {split}: {time.perf_counter() - start:.0f} s", flush=True)
            np.save(path, values.astype(np.float32))
        embeddings.append(np.load(path))
    return (*tfidf, *embeddings)


def spliced_levels(level_weights, tree, seed, X, X_test, E, E_test, Y, threads):
    """Scores of a ranker whose level t was trained with embedding weight
    ``level_weights[t - 1]`` (see ``levels:`` in the module docstring)."""
    from skxmr import XRLinearClassifier

    if len(level_weights) != tree.n_levels:
        raise SystemExit(f"levels: {len(level_weights)} weights for a tree of "
                         f"{tree.n_levels} levels {list(tree.level_sizes)}")
    top = max(level_weights)
    if top <= 0:
        raise SystemExit("levels: at least one weight must be positive")
    models, start = {}, time.perf_counter()
    for weight in sorted(set(level_weights)):
        # every model sees [weight * E, X]; weight 0 keeps the zero block so that
        # all coefficient matrices have the same rows
        features = sp.hstack([sp.csr_matrix(weight * E), X], format="csr", dtype=np.float32)
        models[weight] = XRLinearClassifier(indexer=tree, random_state=seed,
                                            n_jobs=threads).fit(features, Y)
    seconds = time.perf_counter() - start
    spliced = models[top]
    coef = []
    for level, weight in enumerate(level_weights):
        # fold weight / top into the embedding rows: the test rows carry top * E
        scale = np.ones(models[weight].coef_[level].shape[0])
        scale[: E.shape[1]] = weight / top
        coef.append(sp.csc_matrix(sp.diags(scale) @ models[weight].coef_[level],
                                  dtype=models[weight].coef_[level].dtype))
    spliced.coef_ = coef  # a new list: the model rebuilds its searcher
    test = sp.hstack([sp.csr_matrix(top * E_test), X_test], format="csr", dtype=np.float32)
    return spliced.decision_function(test), seconds


def parse_params(text):
    params = {}
    for pair in filter(None, text.split(",")):
        key, value = pair.split("=")
        for cast in (int, float):
            try:
                value = cast(value)
                break
            except ValueError:
                pass
        params[key] = value
    return params


def sweep_parser(doc):
    """The options every issue-7 sweep shares: --data, --cache, --threads."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=HERE / "_cache")
    parser.add_argument("--threads", type=int, default=2)
    return parser


def main():
    parser = sweep_parser(__doc__)
    parser.add_argument("--max-seq-length", type=int, default=64)
    parser.add_argument("--blend", nargs="+", metavar="CONFIG",
                        help="score the sum of these configurations' saved scores")
    parser.add_argument("--embeddings", metavar="TAG",
                        help="the cached embeddings <data>.{trn,tst}.TAG.npy instead")
    parser.add_argument("configs", nargs="*")
    args = parser.parse_args()

    from skxmr import XRLinearClassifier, XTransformerClassifier
    from skxmr.metrics import topk_report

    args.cache.mkdir(parents=True, exist_ok=True)
    name = args.data.name
    texts, Y, test_texts, Y_test = load_texts(args.data)

    def score_path(config):
        tag = f"{args.embeddings}." if args.embeddings else ""
        return (args.cache
                / f"S.{name}.{tag}{config.replace(':', '_').replace('=', '-')}.npz")

    def report(label, scores, seconds=None):
        r = topk_report(Y_test, scores, ks=(1, 3, 5))
        timing = "" if seconds is None else f"  fit {seconds:.0f} s"
        print(f"{label:50s} " + " / ".join(f"{100 * r[k]:.2f}" for k in ("P@1", "P@3", "P@5"))
              + timing, flush=True)

    if args.blend:
        report(" + ".join(args.blend), sum(sp.load_npz(score_path(c)) for c in args.blend))
    if not args.configs:
        return
    X, X_test, E, E_test = cached_features(name, texts, test_texts, args.cache,
                                           args.max_seq_length, args.threads)
    if args.embeddings:
        E, E_test = (np.load(args.cache / f"{name}.{split}.{args.embeddings}.npy")
                     for split in ("trn", "tst"))
    trees = {}

    def tfidf_tree(seed):
        if seed not in trees:
            trees[seed] = XRLinearClassifier(random_state=seed, n_jobs=args.threads).fit(
                X, Y).tree_
        return trees[seed]

    for config in args.configs:
        kind, *fields = config.split(":")
        if kind == "tfidf":
            seed, extra = fields[0], fields[1:]
            train, test = X, X_test
        elif kind == "levels":
            level_weights, seed = [float(w) for w in fields[0].split(",")], fields[1]
            scores, seconds = spliced_levels(level_weights, tfidf_tree(int(seed)), int(seed),
                                             X, X_test, E, E_test, Y, args.threads)
            sp.save_npz(score_path(config), scores)
            report(config, scores, seconds)
            continue
        elif kind == "neighbors":
            weight, k, beta, seed, extra = (float(fields[0]), int(fields[1]),
                                            float(fields[2]), fields[3], fields[4:])
            # the class's own neighbour bank and concatenation
            model = XTransformerClassifier(embedding_weight=weight, n_neighbors=k,
                                           neighbor_weight=beta)
            start = time.perf_counter()
            votes = model._fit_neighbors(E, Y, None)
            train = model._combine(E, X, votes)
            test = model._combine(E_test, X_test, model._neighbor_votes(E_test))
            print(f"{config}: neighbour votes in {time.perf_counter() - start:.0f} s",
                  flush=True)
        elif kind == "frozen":
            weight, seed, extra = float(fields[0]), fields[1], fields[2:]
            # the class's own concatenation [weight * embeddings, TF-IDF]
            combine = XTransformerClassifier(embedding_weight=weight)._combine
            train, test = combine(E, X), combine(E_test, X_test)
        else:
            parser.error(f"unknown configuration kind {kind!r} in {config!r}")
        params = parse_params(extra[0] if extra else "")
        own = seed == "own"
        model = XRLinearClassifier(indexer=None if own else tfidf_tree(int(seed)),
                                   random_state=0 if own else int(seed),
                                   n_jobs=args.threads, **params)
        start = time.perf_counter()
        model.fit(train, Y)
        seconds = time.perf_counter() - start
        scores = model.decision_function(test)
        sp.save_npz(score_path(config), scores)
        report(config, scores, seconds)


if __name__ == "__main__":
    main()
