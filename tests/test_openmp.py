"""Thread counting and the serial (no OpenMP) build."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from joblib import cpu_count

from skxmr.utils import effective_n_threads, openmp_enabled

REPO = Path(__file__).resolve().parents[1]


def test_effective_n_threads_counts_like_scikit_learn():
    if not openmp_enabled():
        assert effective_n_threads(None) == effective_n_threads(4) == 1
        return
    n_cpus = effective_n_threads(None)
    assert 1 <= n_cpus <= max(cpu_count(), int(os.environ.get("OMP_NUM_THREADS", 0)))
    assert effective_n_threads(3) == 3
    assert effective_n_threads(-1) == n_cpus
    assert effective_n_threads(-n_cpus - 5) == 1
    with pytest.raises(ValueError, match="n_jobs == 0"):
        effective_n_threads(0)


def test_omp_num_threads_is_respected():
    code = "from skxmr.utils import effective_n_threads as f; print(f(None), f(-1))"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True, cwd=REPO.parent)
    assert out.stdout.split() == ["1", "1"]


@pytest.mark.slow
def test_serial_build_without_openmp(tmp_path):
    """SKXMR_NO_OPENMP=1 builds kernels that work, single-threaded, with a warning."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(
        REPO / "skxmr", src / "skxmr",
        ignore=shutil.ignore_patterns("*.so", "*.c", "*.cpp", "__pycache__", "*.xz"),
    )
    env = {**os.environ, "SKXMR_NO_OPENMP": "1"}
    build = subprocess.run(
        [sys.executable, "setup.py", "build_ext", "--inplace"],
        cwd=src, env=env, capture_output=True, text=True,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    assert "building without OpenMP" in build.stderr + build.stdout
    check = (
        "import numpy as np, scipy.sparse as sp\n"
        "from skxmr.utils import openmp_enabled, effective_n_threads\n"
        "from skxmr._cython._topk import _csr_row_topk\n"
        "assert not openmp_enabled() and effective_n_threads(8) == 1\n"
        "S = sp.csr_matrix(np.array([[0.1, 0.5, 0.3], [0.0, 0.0, 0.2]], 'f4'))\n"
        "idx = np.empty((2, 2), np.intp); val = np.empty((2, 2), 'f4')\n"
        "_csr_row_topk(S.data, S.indices, S.indptr, val, idx, 4)\n"
        "assert idx.tolist() == [[1, 2], [2, -1]], idx\n"
        "print('serial ok')\n"
    )
    run = subprocess.run([sys.executable, "-c", check], cwd=src, capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stderr
    assert "serial ok" in run.stdout
