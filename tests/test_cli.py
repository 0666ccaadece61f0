"""The ``skxmr`` command line: train, predict and evaluate from files, with clear
errors and trustworthy exit codes."""

import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

from skxmr.__main__ import main


def write_tsv(path, texts, labels):
    """A labelled .tsv: one 'label,label<TAB>text' line per document."""
    path.write_text("".join(f"{','.join(tags)}\t{text}\n"
                            for text, tags in zip(texts, labels)))
    return path


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


def test_text_model_on_the_bundled_data(debtags_train, tmp_path, capsys):
    texts, labels = debtags_train
    train = write_tsv(tmp_path / "train.tsv", texts[:1500], labels[:1500])
    test = write_tsv(tmp_path / "test.tsv", texts[1500:1800], labels[1500:1800])
    model = tmp_path / "model"
    assert run(["train", train, "-o", model, "-q"], capsys)[0] == 0
    assert (model / "vectorizer" / "skxmr_model.json").is_file()
    assert not (model / "vectorizer.json").exists()
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


# ------------------------------------------------- the package and its layout
def test_the_console_script_and_python_m_use_the_cli_package():
    import skxmr.__main__
    import skxmr._cli

    assert skxmr.__main__.main is skxmr._cli.main
    for module in ("_main", "_console", "_commands", "_data", "_model_dir", "_demo"):
        __import__(f"skxmr._cli.{module}")


def _lines(err):
    return err.splitlines()


def _one_error_line(err, command):
    lines = _lines(err)
    errors = [line for line in lines if line.startswith(f"skxmr {command}: error: ")]
    assert len(errors) == 1, err
    assert "Traceback" not in err
    return errors[0]


def _snapshot(folder):
    return {p.relative_to(folder).as_posix(): (p.read_bytes() if p.is_file() else None)
            for p in sorted(folder.rglob("*"))}


# ------------------------------------------- train -o: never delete user files
def test_train_refuses_a_folder_with_an_empty_classifier_dir(xmc_files, tmp_path,
                                                             capsys):
    # The old CLI deleted vectorizer.json and vectorizer_idf.npy here (exit 0).
    out = tmp_path / "mine"
    (out / "classifier").mkdir(parents=True)
    (out / "vectorizer.json").write_text("my own notes")
    (out / "vectorizer_idf.npy").write_bytes(b"my own bytes")
    before = _snapshot(out)
    code, _, err = run(["train", xmc_files / "train.txt", "-o", out, "-q"], capsys)
    assert code == 1
    assert "not a skxmr model directory" in _one_error_line(err, "train")
    assert err.count("\n") == 1
    assert _snapshot(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["mine"]  # no temporary left


def test_train_refuses_an_unrelated_classifier_dir_in_one_line(xmc_files, tmp_path):
    # The old CLI let skxmr.save's FileExistsError through as a traceback.
    out = tmp_path / "mine"
    (out / "classifier").mkdir(parents=True)
    (out / "classifier" / "notes.txt").write_text("keep me")
    before = _snapshot(out)
    result = subprocess.run([sys.executable, "-m", "skxmr", "train",
                             str(xmc_files / "train.txt"), "-o", str(out), "-q"],
                            capture_output=True, text=True)
    assert result.returncode == 1, result.stderr
    assert result.stderr.count("\n") == 1
    assert "not a skxmr model directory" in _one_error_line(result.stderr, "train")
    assert _snapshot(out) == before


def test_train_replaces_only_a_complete_model_it_wrote(xmc_files, tmp_path, capsys):
    out = tmp_path / "model"
    train = ["train", xmc_files / "train.txt", "-o", out, "-q"]
    assert run(train, capsys)[0] == 0
    assert (out / "skxmr_cli_model.json").is_file()
    assert run(train + ["--top-k", "3"], capsys)[0] == 0  # its own model: replaced
    import skxmr

    assert skxmr.load(out / "classifier").top_k == 3
    # A file skxmr did not write, anywhere in the directory: refused, untouched.
    for extra in (out / "notes.txt", out / "classifier" / "notes.txt"):
        extra.write_text("mine")
        before = _snapshot(out)
        code, _, err = run(train, capsys)
        assert code == 1 and "not a skxmr model directory" in err
        assert _snapshot(out) == before
        extra.unlink()
    # An incomplete or changed model (a file missing, a file of another size).
    array = next((out / "classifier").glob("*.npy"))
    saved = array.read_bytes()
    array.write_bytes(saved + b"x")
    code, _, err = run(train, capsys)
    assert code == 1 and array.read_bytes() == saved + b"x"
    array.unlink()
    code, _, err = run(train, capsys)
    assert code == 1 and not array.exists()
    # An empty directory is fine (nothing to lose).
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run(["train", xmc_files / "train.txt", "-o", empty, "-q"], capsys)[0] == 0
    assert (empty / "classifier").is_dir()


def test_train_replaces_a_model_of_the_old_cli_without_manifest(xmc_files, tmp_path,
                                                                capsys):
    out = tmp_path / "model"
    train = ["train", xmc_files / "train.txt", "-o", out, "-q"]
    assert run(train, capsys)[0] == 0
    (out / "skxmr_cli_model.json").unlink()  # what the old CLI wrote
    assert run(["predict", out, xmc_files / "Xt.npz", "-o", tmp_path / "p", "-q"],
               capsys)[0] == 0
    assert run(train, capsys)[0] == 0
    assert (out / "skxmr_cli_model.json").is_file()


def test_train_checks_the_output_before_reading_data(xmc_files, tmp_path, capsys):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    code, _, err = run(["train", xmc_files / "train.txt", "-o", a_file], capsys)
    assert code == 1 and "reading data" not in err and a_file.read_text() == "x"
    assert "not a skxmr model directory" in _one_error_line(err, "train")


# ---------------------------------------------- predict -o: never overwrite
@pytest.fixture(scope="module")
def trained(xmc_files, tmp_path_factory):
    model = tmp_path_factory.mktemp("trained") / "model"
    assert main(["train", str(xmc_files / "train.txt"), "-o", str(model), "-q"]) == 0
    return model


def test_predict_refuses_an_existing_output_unless_force(xmc_files, trained, tmp_path,
                                                         capsys):
    out = tmp_path / "pred.txt"
    out.write_text("precious")
    argv = ["predict", trained, xmc_files / "Xt.npz", "-o", out]
    code, _, err = run(argv, capsys)
    assert code == 1 and out.read_text() == "precious"
    assert "--force" in _one_error_line(err, "predict")
    assert "loading the model" not in err  # checked before any work
    code, _, err = run(argv + ["--force", "-q"], capsys)
    assert code == 0 and err == ""
    assert len(out.read_text().splitlines()) == 200
    assert [p.name for p in tmp_path.iterdir()] == ["pred.txt"]  # no temporary left


def test_predict_never_overwrites_its_input_even_with_force(xmc_files, trained,
                                                            tmp_path, capsys):
    data = tmp_path / "test.txt"
    data.write_bytes((xmc_files / "test.txt").read_bytes())
    saved = data.read_bytes()
    link = tmp_path / "link.txt"
    link.symlink_to(data)
    for out in (data, link):
        code, _, err = run(["predict", trained, data, "-o", out, "--force"], capsys)
        assert code == 1 and data.read_bytes() == saved
        assert "input file" in _one_error_line(err, "predict")
        assert "loading the model" not in err
    before = _snapshot(trained)
    code, _, err = run(["predict", trained, data, "-o", trained / "p.txt", "--force"],
                       capsys)
    assert code == 1 and "model directory" in _one_error_line(err, "predict")
    assert _snapshot(trained) == before


def test_predict_bad_output_paths_are_one_line_errors(xmc_files, trained, tmp_path):
    cases = [(tmp_path, "is a directory"),
             (tmp_path / "missing" / "p.txt", "no such directory")]
    if sys.platform.startswith("linux"):  # a directory nobody can write, even root
        cases.append(("/proc/p.txt", "/proc"))
    import os

    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        cases.append((locked / "p.txt", "not writable"))
    for out, message in cases:
        result = subprocess.run([sys.executable, "-m", "skxmr", "predict",
                                 str(trained), str(xmc_files / "Xt.npz"), "-o",
                                 str(out)], capture_output=True, text=True)
        assert result.returncode == 1, (out, result.stderr)
        assert message in _one_error_line(result.stderr, "predict")
        assert result.stderr.count("\n") == 1, result.stderr  # before any step


# ------------------------------------------------- one-line errors everywhere
def test_evaluate_k_0_is_a_usage_error_without_traceback(xmc_files, trained):
    result = subprocess.run([sys.executable, "-m", "skxmr", "evaluate", str(trained),
                             str(xmc_files / "test.txt"), "-k", "0"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "skxmr evaluate: error: argument -k: must be at least 1, got 0")


@pytest.mark.parametrize("option", ["--top-k=0", "--beam-size=0", "--C=0",
                                    "--branching-factor=1", "--max-leaf-size=0",
                                    "--n-jobs=0", "--threshold=-1", "--min-df=0"])
def test_bad_train_options_are_usage_errors(xmc_files, tmp_path, option, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", str(xmc_files / "train.txt"), "-o", str(tmp_path / "m"), option])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith(f"skxmr train: error: argument "
                                           f"{option.split('=')[0]}")
    assert not (tmp_path / "m").exists()


def test_train_on_a_tiny_tsv_is_a_one_line_error(tmp_path):
    tiny = tmp_path / "tiny.tsv"
    tiny.write_text("a\tone text\nb\tanother story\n")
    result = subprocess.run([sys.executable, "-m", "skxmr", "train", str(tiny), "-o",
                             str(tmp_path / "m"), "-q"], capture_output=True, text=True)
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    line = _one_error_line(result.stderr, "train")
    assert "TF-IDF" in line and "no terms remain" in line and "--min-df" in line
    assert not (tmp_path / "m").exists()


def test_an_error_ends_the_progress_line_first(tmp_path, capsys):
    broken = tmp_path / "broken.txt"
    broken.write_text("3 10 4\n0 1:0.5\nnot a row\n")
    code, _, err = run(["train", broken, "-o", tmp_path / "m"], capsys)
    assert code == 1
    lines = _lines(err)
    assert lines[0] == "reading data ..."  # ended, not glued to the error
    assert lines[1].startswith("skxmr train: error: ") and len(lines) == 2


# -------------------------------------------------------------- warnings
@pytest.fixture(scope="module")
def empty_label_files(xmc_files, tmp_path_factory):
    # A label without positive rows: LabelIndexer warns about it during fit.
    folder = tmp_path_factory.mktemp("empty_label")
    Y = sp.load_npz(xmc_files / "Y.npz")
    sp.save_npz(folder / "Y.npz", sp.hstack([Y, sp.csr_matrix((Y.shape[0], 1))],
                                            format="csr"))
    return [xmc_files / "X.npz", folder / "Y.npz"]


def test_warnings_are_one_cli_line_and_quiet_silences_them(empty_label_files,
                                                           tmp_path):
    base = [sys.executable, "-m", "skxmr", "train", *map(str, empty_label_files)]
    loud = subprocess.run(base + ["-o", str(tmp_path / "a")], capture_output=True,
                          text=True)
    assert loud.returncode == 0, loud.stderr
    lines = loud.stderr.splitlines()
    warned = [line for line in lines if "warning:" in line.lower()]
    assert warned == ["skxmr train: warning: 1 labels have an all-zero vector (no "
                      "positive instance); they are placed in leaves by the balance "
                      "constraint only."]
    assert ".py:" not in loud.stderr and "warnings.warn(" not in loud.stderr
    # The step line was ended before the warning; its time follows on its own line.
    at = lines.index(warned[0])
    assert lines[at - 1] == "training on 500 rows ..."
    assert lines[at + 1].startswith("training on 500 rows: ")
    quiet = subprocess.run(base + ["-o", str(tmp_path / "b"), "-q"],
                           capture_output=True, text=True)
    assert quiet.returncode == 0 and quiet.stderr == ""


# ---------------------------------------------------------------- .tsv lines
def test_tsv_lines_without_a_tab_are_errors_with_the_line_number(debtags_train,
                                                                tmp_path, capsys):
    rows = [f"{','.join(tags)}\t{text}" for text, tags in zip(*debtags_train)][:300]
    model = tmp_path / "m"
    train = tmp_path / "train.tsv"
    train.write_text("\n".join(rows) + "\n")
    assert run(["train", train, "-o", model, "-q"], capsys)[0] == 0
    mixed = tmp_path / "mixed.tsv"
    mixed.write_text("\n".join(rows[:3] + ["a text without labels"] + rows[3:6]))
    for argv in (["predict", model, mixed, "-o", tmp_path / "p.txt"],  # was silent
                 ["train", mixed, "-o", tmp_path / "m2"],
                 ["evaluate", model, mixed]):
        code, _, err = run(argv + ["-q"], capsys)
        assert code == 1, argv
        assert "line 4: no tab" in _one_error_line(err, argv[0])
    assert not (tmp_path / "p.txt").exists()
    plain = tmp_path / "plain.tsv"  # predict takes a file of plain texts
    plain.write_text("first text\n\nsecond text\nthird\ttext\n")
    code, _, err = run(["predict", model, plain, "-o", tmp_path / "p.txt", "-q"],
                       capsys)
    assert code == 1 and "line 4: a tab in a file of plain texts" in err
    plain.write_text("first text\n\nsecond text\n")
    assert run(["predict", model, plain, "-o", tmp_path / "p.txt", "-q"],
               capsys)[0] == 0
    assert len((tmp_path / "p.txt").read_text().splitlines()) == 2


# ------------------------------------------------------- TF-IDF options, files
def test_tfidf_options_are_saved_with_the_model(debtags_train, tmp_path, capsys):
    from skxmr._cli._model_dir import load_model
    from skxmr._persistence import load_vectorizer, save_vectorizer

    texts, labels = debtags_train
    train = write_tsv(tmp_path / "train.tsv", texts[:400], labels[:400])
    model = tmp_path / "m"
    argv = ["train", train, "-o", model, "-q", "--min-df", "1", "--ngram-max", "1",
            "--max-features", "500", "--no-sublinear-tf"]
    assert run(argv, capsys)[0] == 0
    _, vectorizer = load_model(model)
    assert (vectorizer.min_df, vectorizer.ngram_range, vectorizer.max_features,
            vectorizer.sublinear_tf) == (1, (1, 1), 500, False)
    assert len(vectorizer.vocabulary_) == 500
    # The vectorizer is the package's container, read back exactly.
    again = load_vectorizer(model / "vectorizer")
    sample = texts[400:410]
    assert (again.transform(sample) != vectorizer.transform(sample)).nnz == 0
    save_vectorizer(again, tmp_path / "copy")
    assert load_vectorizer(tmp_path / "copy").vocabulary_ == vectorizer.vocabulary_
    # A damaged vectorizer file (its checksum): one line naming the vectorizer.
    idf = model / "vectorizer" / "idf.npy"
    idf.write_bytes(idf.read_bytes()[:-8] + b"garbage!")
    code, _, err = run(["predict", model, train, "-o", tmp_path / "p.txt"], capsys)
    assert code == 1 and "vectorizer" in _one_error_line(err, "predict")
    assert not (tmp_path / "p.txt").exists()


def _make_old_text_model(model, train, capsys, manifest):
    """Rewrite the text model ``model`` as the previous ``skxmr train`` wrote it:
    ``vectorizer.json`` + ``vectorizer_idf.npy``, a version 1 manifest or none."""
    import json
    import shutil

    from skxmr._persistence import load_vectorizer

    assert run(["train", train, "-o", model, "-q", "--min-df", "1"], capsys)[0] == 0
    vectorizer = load_vectorizer(model / "vectorizer")
    shutil.rmtree(model / "vectorizer")
    params = {"sublinear_tf": True, "min_df": 1, "ngram_range": [1, 2],
              "max_features": 200_000, "dtype": "float32"}
    (model / "vectorizer.json").write_text(json.dumps(
        {"params": params, "vocabulary": {t: int(i) for t, i in
                                          vectorizer.vocabulary_.items()}}))
    np.save(model / "vectorizer_idf.npy", vectorizer.idf_, allow_pickle=False)
    (model / "skxmr_cli_model.json").unlink()
    if manifest:
        files = {str(p.relative_to(model)): p.stat().st_size
                 for p in sorted(model.rglob("*")) if p.is_file()}
        (model / "skxmr_cli_model.json").write_text(json.dumps(
            {"format": "skxmr-cli-model", "format_version": 1, "skxmr_version": "0",
             "vectorizer": True, "files": files}))


@pytest.mark.parametrize("manifest", [True, False])
def test_a_text_model_of_an_older_skxmr_is_a_clear_error_and_replaceable(
        debtags_train, tmp_path, capsys, manifest):
    texts, labels = debtags_train
    train = write_tsv(tmp_path / "train.tsv", texts[:200], labels[:200])
    model = tmp_path / "old"
    _make_old_text_model(model, train, capsys, manifest)
    before = _snapshot(model)
    for argv in (["predict", model, train, "-o", tmp_path / "p.txt"],
                 ["evaluate", model, train]):
        code, out, err = run(argv, capsys)
        line = _one_error_line(err, argv[0])
        assert code == 1 and out == ""
        assert "written by an older skxmr" in line and "re-train" in line
    assert _snapshot(model) == before and not (tmp_path / "p.txt").exists()
    # skxmr train -o replaces it (its own files), and the new one is read.
    assert run(["train", train, "-o", model, "-q", "--min-df", "1"], capsys)[0] == 0
    assert not (model / "vectorizer.json").exists()
    assert run(["predict", model, train, "-o", tmp_path / "p.txt", "-q"],
               capsys)[0] == 0
    # ... but not when a file of the user's is there too.
    _make_old_text_model(tmp_path / "mine", train, capsys, manifest)
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    before = _snapshot(tmp_path / "mine")
    code, _, err = run(["train", train, "-o", tmp_path / "mine", "-q"], capsys)
    assert code == 1 and "not a skxmr model directory" in err
    assert _snapshot(tmp_path / "mine") == before


def test_a_model_manifest_of_a_newer_format_is_a_clear_error(xmc_files, tmp_path,
                                                             capsys):
    import json

    model = tmp_path / "m"
    assert run(["train", xmc_files / "train.txt", "-o", model, "-q"], capsys)[0] == 0
    manifest = json.loads((model / "skxmr_cli_model.json").read_text())
    manifest["format_version"] = 3
    (model / "skxmr_cli_model.json").write_text(json.dumps(manifest))
    code, _, err = run(["predict", model, xmc_files / "Xt.npz", "-o",
                        tmp_path / "p.txt"], capsys)
    assert code == 1 and "upgrade skxmr" in _one_error_line(err, "predict")


def test_tfidf_options_on_feature_vectors_warn(xmc_files, tmp_path, capsys):
    code, _, err = run(["train", xmc_files / "train.txt", "-o", tmp_path / "m",
                        "--min-df", "1"], capsys)
    assert code == 0
    assert "skxmr train: warning: --min-df, --max-features" in err


# ---------------------------------------------------------------- help texts
def _all_parsers():
    import argparse

    from skxmr._cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return parser, sub.choices


def test_every_option_of_every_command_has_help_with_its_default():
    import argparse

    parser, commands = _all_parsers()
    assert set(commands) == {"demo", "train", "predict", "evaluate", "add-labels",
                             "versions"}
    for name, command in commands.items():
        assert command.description, name
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            where = f"skxmr {name} {action.option_strings or action.dest}"
            assert action.help and action.help.strip(), where
            if action.option_strings:  # an option: its default (or 'required')
                assert "default" in action.help or action.required, where
                stated = action.help.split("(default: ", 1)[-1]
                default = action.default
                if "%(default)s" in action.help or action.required:
                    continue
                if isinstance(default, list):  # nargs="+": the values, spaced
                    assert stated.startswith(" ".join(map(str, default)) + ")"), where
                elif isinstance(default, bool):  # a flag: off by default
                    assert default is False and action.const is True, where
                else:  # None: the help says what happens instead
                    assert default is None, where
    text = commands["train"].format_help()
    for option in ("--branching-factor", "--max-leaf-size", "--C", "--loss",
                   "--negative-sampling", "--beam-size", "--top-k", "--n-jobs",
                   "--random-state", "--min-df", "--max-features", "--ngram-max",
                   "--sublinear-tf"):
        assert option in text
    assert "(default: 16)" in text and "(default: squared_hinge)" in text
    assert "(default: 1 3 5)" in commands["evaluate"].format_help()


def test_doc_shows_the_real_help_of_every_command(tmp_path):
    import os
    from pathlib import Path

    from skxmr._cli._main import COMMANDS, help_texts, write_help_files

    doc = Path(__file__).resolve().parents[1] / "doc"
    if not doc.exists():
        pytest.skip("no doc/ folder (installed package)")
    rst = (doc / "cli.rst").read_text(encoding="utf-8")
    assert "write_help_files" in (doc / "conf.py").read_text(encoding="utf-8")
    write_help_files(tmp_path)
    env = dict(os.environ, COLUMNS="80")
    for name in COMMANDS:
        assert f".. literalinclude:: generated/cli/{name}.txt" in rst, name
        real = subprocess.run([sys.executable, "-m", "skxmr", name, "--help"],
                              capture_output=True, text=True, env=env)
        assert real.returncode == 0
        assert (tmp_path / f"{name}.txt").read_text() == real.stdout == \
            help_texts()[name]


def test_a_warning_during_a_progress_bar_gets_a_line_of_its_own(capsys):
    tqdm = pytest.importorskip("tqdm")
    from skxmr._cli._console import Console

    console = Console("train", verbose=1)
    with tqdm.tqdm(total=3, file=sys.stderr, desc="levels") as bar:
        bar.update(1)
        console.warning("careful")
        bar.update(2)
    err = capsys.readouterr().err
    pieces = err.replace("\r", "\n").splitlines()
    assert "skxmr train: warning: careful" in pieces
    assert "levels: 100%" in pieces[-1]  # the bar is redrawn after the line
    Console("train", quiet=True).warning("hidden")
    assert capsys.readouterr().err == ""
