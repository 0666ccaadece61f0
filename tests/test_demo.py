"""The README's main job."""

from skxmr.__main__ import main
from skxmr._demo import run_demo


def test_demo_prints_precision_and_labelled_examples():
    lines = []
    report = run_demo(n_examples=2, out=lines.append)
    text = "\n".join(lines)
    assert "PLACEHOLDER" in text  # says plainly it is not XR-Linear yet
    assert "P@1" in text and "popularity" in text
    assert "::" in lines[-1]  # example predictions carry label names
    # The baseline must clearly beat predicting the most popular tags.
    assert report["P@1"] > 0.5


def test_cli_demo_entry_point(capsys):
    assert main(["demo", "--examples", "1"]) == 0
    assert "P@1" in capsys.readouterr().out
