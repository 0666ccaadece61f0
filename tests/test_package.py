"""Package-level behaviour: public names, show_versions, no torch on the linear path."""

import subprocess
import sys

import skxmr


def test_public_names():
    for name in skxmr.__all__:
        assert hasattr(skxmr, name), name
    assert skxmr.__version__


def test_show_versions_reports_the_build(capsys):
    skxmr.show_versions()
    out = capsys.readouterr().out
    for key in ("skxmr", "numpy", "scikit-learn", "built with OpenMP"):
        assert key in out


def test_linear_path_never_imports_torch():
    code = (
        "import sys\n"
        "import skxmr, skxmr.metrics, skxmr.datasets\n"
        "from skxmr import LabelIndexer, XRLinearClassifier\n"
        "from skxmr.datasets import make_xmc_classification\n"
        "X, Y = make_xmc_classification(200, 500, 50, random_state=0)\n"
        "LabelIndexer(max_leaf_size=10, random_state=0).fit(X, Y)\n"
        "XRLinearClassifier(random_state=0).fit(X, Y).predict(X)\n"
        "bad = [m for m in ('torch', 'sentence_transformers', 'transformers')\n"
        "       if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", code],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
