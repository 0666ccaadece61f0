"""The README's commands and examples are the ones CI runs and they work as written.

Every ```python block runs as a script (``python block.py``) in a fresh temporary
directory, and what it prints must be the ```text block the README shows under it.
The ```bash blocks: the first two are the commands CI runs verbatim (``.ci/run``); the
installs (the CPU-wheel variant, the docs build) are not run here, since they need a
fresh venv and the network (CI runs the docs build); the command-line block runs after
the data block, in its directory, on the files that block writes.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
FENCE = re.compile(r"^```(\w*)\n(.*?)\n```$", flags=re.S | re.M)


def _blocks():
    """(language, body) of every fenced block, in order."""
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(README)]


def _python_examples():
    """(index, code, expected output) for each python block and the text block under it."""
    blocks = _blocks()
    examples = []
    for i, (lang, body) in enumerate(blocks):
        if lang != "python":
            continue
        assert i + 1 < len(blocks) and blocks[i + 1][0] == "text", (
            f"README python block {len(examples) + 1} has no ```text output block under it")
        examples.append((len(examples), body, blocks[i + 1][1]))
    return examples


def _bash_blocks():
    return [body for lang, body in _blocks() if lang == "bash"]


def _env():
    env = dict(os.environ)
    # The scripts import the skxmr of this checkout, as an installed one would be.
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def _run_script(code, cwd):
    script = Path(cwd) / "readme_block.py"
    script.write_text(code + "\n")
    proc = subprocess.run([sys.executable, script.name], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"README block failed as a script:\n{proc.stderr[-3000:]}"
    return proc.stdout


def _normalise(text):
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def test_ci_runs_the_readme_commands_verbatim():
    main_job, tests = _bash_blocks()[:2]
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert main_job in ci
    assert tests in ci
    assert "pip install torch==2.13.0" in tests.split("&&")[2]


def test_readme_tells_users_how_to_get_the_cpu_build_of_torch():
    cpu_index = "--index-url https://download.pytorch.org/whl/cpu"
    assert any(cpu_index in b for b in _bash_blocks()), "README: the CPU wheel index command"
    install = (REPO / "doc" / "install.rst").read_text()
    assert cpu_index in install
    for text in (README, install):
        assert "`transformer`, `test` and `docs` extras need" in text.replace("``", "`")


def test_every_python_block_is_paired_with_its_output():
    examples = _python_examples()
    assert len(examples) >= 5
    assert any("XRLinearClassifier" in code for _, code, _ in examples)
    assert all(expected.strip() for _, _, expected in examples)


@pytest.mark.parametrize("index", range(len(_python_examples())))
def test_readme_python_block_prints_what_the_readme_shows(index, tmp_path):
    _, code, expected = _python_examples()[index]
    if "LocalCluster" in code:
        assert 'if __name__ == "__main__":' in code, "a Dask script needs the main guard"
    out = _run_script(code, tmp_path)
    assert _normalise(out) == _normalise(expected), (
        f"README python block {index + 1} printed:\n{out}\nthe README shows:\n{expected}")


def test_readme_command_line_block_runs_on_the_data_blocks_files(tmp_path):
    data_block = next(code for _, code, _ in _python_examples() if "dump_xmc_file" in code)
    _run_script(data_block, tmp_path)
    cli = next(b for b in _bash_blocks() if b.lstrip().startswith("skxmr train"))
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", cli], cwd=tmp_path, env=_env(),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    n_test = len((tmp_path / "test.txt").read_text().splitlines()) - 1   # header line
    assert len((tmp_path / "predictions.txt").read_text().splitlines()) >= n_test
    assert "P@1" in proc.stdout or "P@1" in proc.stderr


def _readme_numbers():
    import importlib.util
    spec = importlib.util.spec_from_file_location("readme_numbers",
                                                  REPO / "tools" / "readme_numbers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_numbers_are_the_benchmark_jsons():
    tool = _readme_numbers()
    assert tool.main(["--check"]) == 0, "run: python tools/readme_numbers.py"


def test_readme_numbers_check_fails_when_readme_and_json_disagree(tmp_path):
    import json
    tool = _readme_numbers()
    record = json.loads(tool.JSON_PATH.read_text())
    record["results"]["debian-deps"]["skxmr"]["P@1"] += 0.01
    changed = tmp_path / "references.json"
    changed.write_text(json.dumps(record))
    assert tool.main(["--check", "--json", str(changed)]) == 1


def test_readme_numbers_state_the_losses_and_survive_new_rows():
    tool = _readme_numbers()
    ref = {"P@1": 0.80, "fit_seconds": 1.0, "predict_seconds": 2.0,
           "predict_only_seconds": 0.5, "latency_ms_best": 0.4, "peak_rss_mb_after_fit": 100.0}
    ours = {"P@1": 0.70, "fit_seconds": 2.0, "predict_seconds": 0.1,
            "latency_ms_best": 0.1, "peak_rss_mb_after_fit": 150.0}
    record = {"date": "2026-12-24T00:00:00", "threads": 2, "results": {
        "setA": {"skxmr": ours, "libpecos": ref,
                 "skxmr-ensemble": {"P@1": 0.9},            # a later skxmr row: no reference
                 "newlib": {"P@1": 0.75},                   # a reference we do not know
                 "brokenlib": {"error": "timed out"}},      # a failed run
        "setB": {"libpecos": ref},                          # skxmr did not run
        "setC": {"skxmr": {"error": "killed"}}}}
    block = tool.render(record)
    rows = [line for line in block.splitlines() if line.startswith("| set")]
    assert [r.split("|")[1].strip() for r in rows] == ["setA"]
    assert "75.00 (newlib)" in rows[0] and "skxmr-ensemble" not in block
    assert "below libpecos on 1: setA (-10.00)" in block
    assert "setA (150 vs 100) MB" in block
    assert "slower fit than libpecos on 1: setA (2.00x)" in block
    assert "predict-only mode on 0: none" in block


def test_readme_drops_claims_the_current_run_does_not_support():
    for stale in ("less memory\nwhile fitting on every set", "less memory while fitting on every",
                  "opens at once", "0.3 s vs 7.9 s", "up to a point"):
        assert stale not in README
