"""The README's commands and examples are the ones CI runs and they work."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def _bash_blocks():
    return re.findall(r"```bash\n(.*?)\n```", README, flags=re.S)


def test_ci_runs_the_readme_commands_verbatim():
    main_job, tests = _bash_blocks()[:2]
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert main_job in ci
    assert tests in ci
    assert "pip install torch==2.13.0" in tests.split("&&")[2]


def test_readme_python_example_runs(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)\n```", README, flags=re.S)
    working = [b for b in blocks if "coming" not in b]
    assert working, "the README must show code that works today"
    assert any("XRLinearClassifier" in b for b in working), "the Quickstart must run"
    monkeypatch.chdir(tmp_path)
    for block in working:
        exec(compile(block, "README.md", "exec"), {})
    assert (tmp_path / "train.txt").exists()
