#!/usr/bin/env bash
# Create (idempotently) the reference-library venv for libpecos at benchmarks/references/.pecos.
#
# libpecos 1.2.8 needs numpy<2 and scipy<1.14 and depends on torch, so it lives in
# its own venv, separate from the skxmr dev env. The CPU torch wheel is installed
# first, pinned (torch==2.13.0, available locally), so that libpecos's plain `torch`
# requirement is already satisfied and pip never pulls a multi-GB CUDA build.
#
# Usage: bash benchmarks/references/make_pecos_env.sh [--force]
#   PYTHON=python3.11 to choose the base interpreter (default: python3).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.pecos"
PYTHON="${PYTHON:-python3}"
TORCH_SPEC="torch==2.13.0"

check() {
    "$VENV/bin/python" - <<'PY'
import numpy, scipy, torch, psutil, pecos
import pecos.xmc.xlinear.model  # noqa: F401  (imports the compiled core)
from importlib.metadata import version
print("python  ", __import__("sys").version.split()[0])
for pkg in ("libpecos", "numpy", "scipy", "torch", "scikit-learn", "psutil"):
    try:
        print(f"{pkg:9s}", version(pkg))
    except Exception:
        print(f"{pkg:9s}", "(not installed)")
assert int(numpy.__version__.split(".")[0]) < 2, numpy.__version__
PY
}

if [[ "${1:-}" == "--force" ]]; then
    rm -rf "$VENV"
fi

if [[ -x "$VENV/bin/python" ]] && check >/dev/null 2>&1; then
    echo "pecos env already present at $VENV"
    check
    exit 0
fi

start=$(date +%s)
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check)
"${PIP[@]}" --upgrade pip wheel
"${PIP[@]}" "$TORCH_SPEC"
# Keep torch pinned while resolving libpecos so a plain `torch` requirement can't upgrade it.
"${PIP[@]}" "$TORCH_SPEC" "numpy<2" "scipy<1.14" libpecos psutil
end=$(date +%s)

echo "pecos env created at $VENV in $((end - start)) s"
check
