"""Held-out text sets from Debian's package indexes, for choosing defaults (issue 24).

    python -m benchmarks.make_validation_sets [--out /work/valsets] [--release trixie]
        [--n-train 10000] [--n-test 2500] [--seed 0]

The reported text sets of shared/data (debian-debtags, debian-deps, from bookworm) map a
package's description to its debtags facets or to what it depends on. These sets map the
description (of another release, ``--release``) to fields those sets never use, so that
settings chosen on them are not chosen on the reported sets:

- ``valid-suggests``: description -> the packages it ``Suggests`` (multilabel, long tail);
- ``valid-section``: description -> its ``Section`` (multiclass, a few dozen labels);
- ``valid-maintainer``: description -> its ``Maintainer`` (multiclass, thousands of labels,
  teams and people).

Each text is the package name (dashes as spaces), " . ", then the long description, as in
the shared sets. Split by package name: md5(name) % 5 == 0 is test; then at most
``--n-train`` training and ``--n-test`` test rows are drawn at random (``--seed``), so that
encoding stays affordable on two cores. Test labels not seen in training are dropped; test
rows left without a label are dropped. Output per set, under ``--out/<set>/`` (outside the
repository: never commit data): ``trn_texts.txt``, ``tst_texts.txt``, ``Y.trn.npz``,
``Y.tst.npz`` (CSR 0/1 float32), ``labels.txt`` (train order by frequency),
``{trn,tst}_ids.txt`` and ``SOURCE.md``; the files read by ``_common.load_texts``. The
downloaded indexes are kept in ``--out/_raw/<release>/``.
"""

import collections
import hashlib
import lzma
import re
import urllib.request
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from benchmarks._common import parser_for

MIRROR = "http://deb.debian.org/debian/dists"
INDEXES = {"Packages": "main/binary-amd64/Packages.xz",
           "Translation-en": "main/i18n/Translation-en.xz"}
SETS = ("valid-suggests", "valid-section", "valid-maintainer")
# Links to package registries and Debian hosts say too much about some labels.
_HOSTS = re.compile(r"(https?://)?([\w-]+\.)*(pypi\.(python\.)?org|pythonhosted\.org|"
                    r"npmjs\.(org|com)|debian\.(org|net))\S*", re.I)


def fetch(release, raw):
    """Paths of the uncompressed indexes of ``release`` (downloaded once into ``raw``)."""
    raw.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, suffix in INDEXES.items():
        path = raw / name
        if not path.is_file():
            url = f"{MIRROR}/{release}/{suffix}"
            print(f"downloading {url}", flush=True)
            with urllib.request.urlopen(url, timeout=120) as response:
                data = lzma.decompress(response.read())
            path.write_bytes(data)
        paths[name] = path
    return paths


def stanzas(path):
    """The fields of each paragraph of a Debian control file, as a dict."""
    fields, key = {}, None
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line == "\n":
                if fields:
                    yield fields
                fields, key = {}, None
            elif line[0] in " \t" and key:
                fields[key] += "\n" + line.strip()
            else:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
    if fields:
        yield fields


def package_names(field):
    """The first alternative's package name of each comma-separated relation."""
    names = []
    for relation in field.split(","):
        first = relation.split("|")[0].strip()
        name = re.split(r"[\s(\[<]", first)[0].split(":")[0] if first else ""
        if name:
            names.append(name)
    return names


def clean_description(text):
    lines = ("" if line.strip() == "." else line.strip()
             for line in _HOSTS.sub("(link)", text).split("\n"))
    return " ".join(line for line in lines if line)


def packages(paths):
    """{name: (text, {set: labels})} of the packages that have an English description."""
    descriptions = {}
    for s in stanzas(paths["Translation-en"]):
        if "Package" in s and "Description-en" in s:
            descriptions[(s["Package"], s.get("Description-md5"))] = clean_description(
                s["Description-en"])
    rows = {}
    for s in stanzas(paths["Packages"]):
        name = s.get("Package")
        text = descriptions.get((name, s.get("Description-md5")))
        if not name or text is None or name in rows:
            continue
        section = s.get("Section", "").split("/")[-1]
        rows[name] = (name.replace("-", " ") + " . " + text, {
            "valid-suggests": sorted(set(package_names(s.get("Suggests", ""))) - {name}),
            "valid-section": [section] if section else [],
            "valid-maintainer": [s["Maintainer"]] if s.get("Maintainer") else [],
        })
    return rows


def is_test(name):
    return int(hashlib.md5(name.encode()).hexdigest(), 16) % 5 == 0


def write_set(out, name, rows, n_train, n_test, rng, release):
    keep = sorted(n for n in rows if rows[n][1][name])
    train = [n for n in keep if not is_test(n)]
    test = [n for n in keep if is_test(n)]
    if len(train) > n_train:
        train = sorted(rng.choice(train, n_train, replace=False).tolist())
    counts = collections.Counter(label for n in train for label in rows[n][1][name])
    vocab = [label for label, _ in sorted(counts.items(), key=lambda x: (-x[1], x[0]))]
    column = {label: i for i, label in enumerate(vocab)}
    test = [n for n in test if any(label in column for label in rows[n][1][name])]
    if len(test) > n_test:
        test = sorted(rng.choice(test, n_test, replace=False).tolist())
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    for part, names in (("trn", train), ("tst", test)):
        r, c = [], []
        for i, n in enumerate(names):
            for label in rows[n][1][name]:
                if label in column:
                    r.append(i)
                    c.append(column[label])
        Y = sp.csr_matrix((np.ones(len(r), np.float32), (r, c)),
                          shape=(len(names), len(vocab)))
        Y.sum_duplicates()
        Y.sort_indices()
        sp.save_npz(folder / f"Y.{part}.npz", Y)
        with open(folder / f"{part}_texts.txt", "w", encoding="utf-8") as f:
            f.writelines(rows[n][0].replace("\n", " ").replace("\t", " ") + "\n"
                         for n in names)
        with open(folder / f"{part}_ids.txt", "w", encoding="utf-8") as f:
            f.writelines(n + "\n" for n in names)
    with open(folder / "labels.txt", "w", encoding="utf-8") as f:
        f.writelines(label.replace("\n", " ") + "\n" for label in vocab)
    Y = sp.load_npz(folder / "Y.trn.npz")
    freq = np.asarray(Y.sum(axis=0)).ravel()
    summary = (f"{name}: train {len(train)}, test {len(test)}, labels {len(vocab)}, "
               f"labels/text {Y.nnz / max(1, Y.shape[0]):.2f}, labels with <= 5 training "
               f"texts {100 * np.mean(freq <= 5):.1f}%")
    (folder / "SOURCE.md").write_text(
        f"Built by benchmarks/make_validation_sets.py from Debian {release} main amd64 "
        f"(Packages, Translation-en; {MIRROR}). Validation only: never reported on.\n\n"
        f"{summary}\n", encoding="utf-8")
    print(summary, flush=True)


def main():
    parser = parser_for(__doc__)
    parser.add_argument("--out", default="/work/valsets")
    parser.add_argument("--release", default="trixie")
    parser.add_argument("--n-train", type=int, default=10_000)
    parser.add_argument("--n-test", type=int, default=2_500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    args = parser.parse_args()
    if args.n_train < 1 or args.n_test < 1:
        raise SystemExit("--n-train and --n-test must be positive")
    out = Path(args.out)
    rows = packages(fetch(args.release, out / "_raw" / args.release))
    print(f"{len(rows)} packages with a description in {args.release}", flush=True)
    for name in args.sets:
        write_set(out, name, rows, args.n_train, args.n_test,
                  np.random.RandomState(args.seed), args.release)


if __name__ == "__main__":
    main()
