"""Rebuild skxmr/datasets/data/debian_debtags.tsv.xz from the debian-debtags folder.

Usage: python tools/make_bundled_debtags.py ../shared/data/debian-debtags

The folder is the one described in its PROVENANCE.md (Debian 12 package descriptions
and their debtags). This keeps the texts, package names and label names of both the
train and the test split; the TF-IDF matrices are not bundled (users vectorise).
"""

import lzma
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "skxmr" / "datasets" / "data"


def read_lines(path):
    return path.read_text(encoding="utf-8").rstrip("\n").split("\n")


def main(folder):
    folder = Path(folder)
    rows = []
    for subset, prefix in (("train", "trn"), ("test", "tst")):
        ids = read_lines(folder / f"{prefix}_ids.txt")
        labels = read_lines(folder / f"{prefix}_labels.txt")
        texts = read_lines(folder / f"{prefix}_texts.txt")
        assert len(ids) == len(labels) == len(texts), subset
        for pkg, labs, text in zip(ids, labels, texts):
            assert "\t" not in text and "\t" not in pkg
            rows.append("\t".join([subset, pkg, " ".join(labs.split("\t")), text]))
    payload = ("\n".join(rows) + "\n").encode("utf-8")
    with lzma.open(OUT / "debian_debtags.tsv.xz", "wb", preset=9 | lzma.PRESET_EXTREME) as f:
        f.write(payload)
    vocabulary = read_lines(folder / "labels.txt")
    (OUT / "debian_debtags_labels.txt").write_text("\n".join(vocabulary) + "\n")
    print(f"{len(rows)} rows, {len(vocabulary)} labels ->",
          (OUT / "debian_debtags.tsv.xz").stat().st_size, "bytes")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/debian-debtags")
