"""The README's main job."""

import re

import skxmr._cli._demo
from skxmr.__main__ import main
from skxmr._cli._demo import run_demo


def test_demo_prints_precision_and_labelled_examples():
    lines = []
    report = run_demo(n_examples=2, out=lines.append)
    text = "\n".join(lines)
    assert "PLACEHOLDER" not in text
    assert "XRLinearClassifier" in text and "popularity" in text
    assert re.search(r"P@1\s+P@3\s+P@5", text)
    rows = {line.split()[0]: [float(v) for v in line.split()[1:]]
            for line in lines if line.strip().startswith(("XR-Linear", "popularity"))}
    model, popularity = rows["XR-Linear"], rows["popularity"]
    assert model == [round(100 * report[f"P@{k}"], 2) for k in (1, 3, 5)]
    # XR-Linear (measured: P@1 90.3, P@3 63.7, P@5 48.2) must clearly beat
    # predicting the most popular tags (34.5, 30.4, 25.9).
    assert report["P@1"] > 0.85 and report["P@3"] > 0.58 and report["P@5"] > 0.44
    assert all(m > p + 15 for m, p in zip(model, popularity))
    examples = lines[-2:]
    assert all("::" in line for line in examples)  # label names
    assert any("*" in line for line in examples)  # some correct predictions


def test_cli_demo_entry_point(capsys, monkeypatch):
    # The CLI plumbing only (the demo itself runs in the test above).
    calls = []

    def fake_run_demo(n_examples=3, out=print):
        calls.append(n_examples)
        out("P@1")

    monkeypatch.setattr(skxmr._cli._demo, "run_demo", fake_run_demo)
    assert main(["demo", "--examples", "1"]) == 0
    assert calls == [1]
    assert "P@1" in capsys.readouterr().out
