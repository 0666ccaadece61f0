"""The ``skxmr`` command line: train, predict and evaluate from files, with clear
errors and trustworthy exit codes."""

import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

from skxmr.__main__ import main
from skxmr.datasets import dump_xmc_file, load_debian_debtags, make_xmc_classification


@pytest.fixture(scope="module")
def xmc_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("xmc")
    X, Y = make_xmc_classification(700, 200, 40, random_state=0)
    dump_xmc_file(X[:500], Y[:500], folder / "train.txt")
    dump_xmc_file(X[500:], Y[500:], folder / "test.txt")
    sp.save_npz(folder / "X.npz", X[:500])
    sp.save_npz(folder / "Y.npz", Y[:500])
    sp.save_npz(folder / "Xt.npz", X[500:])
    sp.save_npz(folder / "Yt.npz", Y[500:])
    return folder


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_train_predict_evaluate_xmc_file(xmc_files, tmp_path, capsys):
    model = tmp_path / "model"
    code, _, err = run(["train", xmc_files / "train.txt", "-o", model, "--top-k", "5"],
                       capsys)
    assert code == 0 and "training on 500 rows" in err
    out_file = tmp_path / "pred.txt"
    code, _, _ = run(["predict", model, xmc_files / "test.txt", "-o", out_file, "-q"],
                     capsys)
    assert code == 0
    lines = out_file.read_text().splitlines()
    assert len(lines) == 200
    pairs = [p.split(":") for p in lines[0].split()]
    assert len(pairs) == 5 and all(0 <= int(j) < 40 for j, _ in pairs)
    scores = [float(s) for _, s in pairs]
    assert scores == sorted(scores, reverse=True)
    code, out, _ = run(["evaluate", model, xmc_files / "test.txt", "-k", "1", "3", "-q"],
                       capsys)
    assert code == 0
    p1 = float(out.split()[1])
    assert out.startswith("P@1") and 50 < p1 <= 100


def test_npz_pair_gives_the_same_model_as_the_xmc_file(xmc_files, tmp_path, capsys):
    for name, data in (("a", [xmc_files / "train.txt"]),
                       ("b", [xmc_files / "X.npz", xmc_files / "Y.npz"])):
        assert run(["train", *data, "-o", tmp_path / name, "-q"], capsys)[0] == 0
        assert run(["predict", tmp_path / name, xmc_files / "Xt.npz", "-o",
                    tmp_path / f"{name}.txt", "-q"], capsys)[0] == 0
    assert (tmp_path / "a.txt").read_text() == (tmp_path / "b.txt").read_text()
    code, out, _ = run(["evaluate", tmp_path / "b", xmc_files / "Xt.npz",
                        xmc_files / "Yt.npz", "-q"], capsys)
    assert code == 0 and "P@5" in out


def test_text_model_on_the_bundled_data(tmp_path, capsys):
    texts, labels = load_debian_debtags(subset="train", return_X_y=True)
    train = tmp_path / "train.tsv"
    train.write_text("".join(f"{','.join(tags)}\t{text}\n" for text, tags in
                             zip(texts[:1500], labels[:1500])))
    test = tmp_path / "test.tsv"
    test.write_text("".join(f"{','.join(tags)}\t{text}\n" for text, tags in
                            zip(texts[1500:1800], labels[1500:1800])))
    model = tmp_path / "model"
    assert run(["train", train, "-o", model, "-q"], capsys)[0] == 0
    assert (model / "vectorizer.json").exists()
    code, out, _ = run(["evaluate", model, test, "-q"], capsys)
    assert code == 0 and float(out.split()[1]) > 60  # P@1 in percent
    bare = tmp_path / "bare.tsv"  # texts only
    bare.write_text("".join(t.replace("\t", " ") + "\n" for t in texts[1500:1510]))
    code, _, _ = run(["predict", model, bare, "-o", tmp_path / "p.txt", "-q"], capsys)
    lines = (tmp_path / "p.txt").read_text().splitlines()
    assert code == 0 and len(lines) == 10 and "::" in lines[0]  # debtags names


def test_bad_files_give_exit_code_1_and_one_line(xmc_files, tmp_path, capsys):
    model = tmp_path / "model"
    assert run(["train", xmc_files / "train.txt", "-o", model, "-q"], capsys)[0] == 0
    broken = tmp_path / "broken.txt"
    broken.write_text("3 10 4\n0 1:0.5\nnot a row\n")
    wide = tmp_path / "wide.npz"
    sp.save_npz(wide, sp.random(5, 7, density=0.5, format="csr", random_state=0))
    cases = [
        (["train", tmp_path / "missing.txt", "-o", model], "no such file"),
        (["train", broken, "-o", tmp_path / "m2"], "broken.txt"),
        (["predict", tmp_path / "nomodel", xmc_files / "test.txt", "-o",
          tmp_path / "x"], "no such model"),
        (["predict", model, wide, "-o", tmp_path / "x"], "7 features"),
        (["evaluate", model, xmc_files / "Xt.npz"], "labels are needed"),
        (["train", xmc_files / "train.txt", "-o", xmc_files], "not a skxmr model"),
    ]
    for argv, message in cases:
        code, _, err = run(argv + ["-q"], capsys)
        assert code == 1, argv
        assert err.startswith("skxmr ") and message in err and err.count("\n") == 1


def test_console_entry_point_exit_codes(xmc_files, tmp_path):
    base = [sys.executable, "-m", "skxmr"]
    ok = subprocess.run(base + ["train", str(xmc_files / "train.txt"), "-o",
                                str(tmp_path / "m"), "-q"], capture_output=True)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run(base + ["predict", str(tmp_path / "m"), "nope.txt", "-o",
                                 str(tmp_path / "o")], capture_output=True, text=True)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    usage = subprocess.run(base + ["train"], capture_output=True, text=True)
    assert usage.returncode == 2 and "usage" in usage.stderr
    for command in ("train", "predict", "evaluate", "demo"):
        helped = subprocess.run(base + [command, "--help"], capture_output=True,
                                text=True)
        assert helped.returncode == 0 and "usage: skxmr" in helped.stdout
