"""Progress reporting: tqdm bars when verbose, nothing at verbose=0, and tqdm
stays optional (never imported at ``import skxmr`` or when verbose=0)."""

import subprocess
import sys

import numpy as np
import pytest

from skxmr import LabelIndexer, XRLinearClassifier
from skxmr._progress import progress
from skxmr.datasets import make_xmc_classification


@pytest.fixture(scope="module")
def data():
    # B=4 and leaves of 10: three levels below the root, so the bars have
    # several steps.
    return make_xmc_classification(400, 300, 60, random_state=0)


def _model(verbose):
    return XRLinearClassifier(LabelIndexer(branching_factor=4, max_leaf_size=10,
                                           verbose=verbose),
                              random_state=0, n_jobs=1, verbose=verbose)


def test_verbose_0_writes_nothing(data, capfd):
    X, Y = data
    _model(0).fit(X, Y).predict_topk(X[:5])
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_verbose_1_shows_tqdm_bars_on_stderr(data, capfd):
    pytest.importorskip("tqdm")
    X, Y = data
    model = _model(1).fit(X, Y)
    out, err = capfd.readouterr()
    assert out == ""
    n_levels = model.tree_.n_levels
    assert "XR-Linear levels: 100%" in err
    assert f"{n_levels}/{n_levels}" in err
    assert "label tree levels" in err


def test_verbose_does_not_change_the_model(data):
    X, Y = data
    quiet, loud = _model(0).fit(X, Y), _model(1).fit(X, Y)
    assert quiet.tree_.equals(loud.tree_)
    for a, b in zip(quiet.coef_, loud.coef_):
        assert (a != b).nnz == 0


def test_default_indexer_gets_the_classifiers_verbose(data, capfd):
    pytest.importorskip("tqdm")
    X, Y = data
    XRLinearClassifier(random_state=0, n_jobs=1, verbose=1).fit(X, Y)
    err = capfd.readouterr().err
    assert "label tree levels" in err and "XR-Linear levels" in err


def test_without_tqdm_verbose_prints_plain_lines(data, capfd, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm -> ImportError
    X, Y = data
    model = _model(1).fit(X, Y)
    out, err = capfd.readouterr()
    assert out == ""
    n_levels = model.tree_.n_levels
    lines = err.strip().splitlines()
    assert f"XR-Linear levels: {n_levels}/{n_levels} level" in err
    assert all(line.endswith("done") for line in lines if "done" in line)
    assert len(lines) <= 2 * n_levels + 2  # a few lines, not a flood
    np.testing.assert_array_equal(model.predict_topk(X[:3])[0],
                                  _model(0).fit(X, Y).predict_topk(X[:3])[0])


def test_progress_helper_forms(capfd, monkeypatch):
    assert list(progress(range(3), verbose=0)) == [0, 1, 2]
    with progress(total=4, verbose=0) as bar:
        bar.update(4)
        bar.set_postfix_str("x")
    assert capfd.readouterr().err == ""
    monkeypatch.setitem(sys.modules, "tqdm", None)
    assert list(progress(iter("ab"), desc="letters", verbose=1)) == ["a", "b"]
    assert capfd.readouterr().err.startswith("letters: 2 it, ")


def test_plain_fallback_format(capfd, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    with progress(total=3, desc="encoding", unit="batch", verbose=1) as bar:
        bar.update(3)
    err = capfd.readouterr().err
    assert err.startswith("encoding: 3/3 batch, ") and err.rstrip().endswith("done")


def test_import_skxmr_and_quiet_fit_do_not_import_tqdm():
    code = (
        "import sys\n"
        "import skxmr\n"
        "from skxmr.datasets import make_xmc_classification\n"
        "X, Y = make_xmc_classification(200, 100, 20, random_state=0)\n"
        "skxmr.XRLinearClassifier(random_state=0).fit(X, Y)\n"
        "assert 'tqdm' not in sys.modules, 'tqdm imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------- command line
def _cli(argv, capfd):
    from skxmr.__main__ import main

    code = main([str(a) for a in argv])
    out, err = capfd.readouterr()
    return code, out, err


def test_cli_verbose_shows_bars_quiet_prints_nothing(xmc_files, tmp_path, capfd):
    pytest.importorskip("tqdm")
    code, out, err = _cli(["train", xmc_files / "train.txt", "-o", tmp_path / "m",
                           "-v"], capfd)
    assert code == 0 and out == ""
    assert "XR-Linear levels" in err and "training on 500 rows: " in err
    code, out, err = _cli(["train", xmc_files / "train.txt", "-o", tmp_path / "q",
                           "-q"], capfd)
    assert code == 0 and out == "" and err == ""


def test_cli_without_terminal_prints_step_lines_only(xmc_files, tmp_path, capfd):
    # stderr is captured (not a terminal): one line per step, no bars.
    code, _, err = _cli(["train", xmc_files / "train.txt", "-o", tmp_path / "m"],
                        capfd)
    assert code == 0
    assert "training on 500 rows ..." in err and "XR-Linear levels" not in err


def test_cli_saved_model_is_not_verbose(xmc_files, tmp_path, capfd):
    import skxmr

    assert _cli(["train", xmc_files / "train.txt", "-o", tmp_path / "m", "-v"],
                capfd)[0] == 0
    model = skxmr.load(tmp_path / "m" / "classifier")
    assert model.verbose == 0


def test_cli_predict_in_blocks_equals_one_call(xmc_files, tmp_path, capfd,
                                               monkeypatch):
    from skxmr._cli import _commands as cli

    assert _cli(["train", xmc_files / "train.txt", "-o", tmp_path / "m", "-q"],
                capfd)[0] == 0
    assert _cli(["predict", tmp_path / "m", xmc_files / "test.txt", "-o",
                 tmp_path / "one.txt", "-q"], capfd)[0] == 0
    monkeypatch.setattr(cli, "_PREDICT_BLOCK", 7)  # 200 rows -> 29 blocks
    code, _, err = _cli(["predict", tmp_path / "m", xmc_files / "test.txt", "-o",
                         tmp_path / "blocks.txt", "-v"], capfd)
    assert code == 0 and "predicting" in err
    try:
        import tqdm  # noqa: F401
    except ImportError:
        assert "predicting: 29/29 block" in err  # the plain fallback's last line
    else:
        assert "29/29" in err
    assert (tmp_path / "blocks.txt").read_text() == (tmp_path / "one.txt").read_text()
    code, out, err = _cli(["evaluate", tmp_path / "m", xmc_files / "test.txt", "-v"],
                          capfd)
    assert code == 0 and out.startswith("P@1")


def test_cli_verbose_and_quiet_exclude_each_other(xmc_files, tmp_path, capfd):
    with pytest.raises(SystemExit) as exc:
        _cli(["train", xmc_files / "train.txt", "-o", tmp_path / "m", "-v", "-q"],
             capfd)
    assert exc.value.code == 2
