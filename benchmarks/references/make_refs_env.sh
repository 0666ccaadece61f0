#!/usr/bin/env bash
# Create (idempotently) the reference-library venv for Omikuji and napkinXC at
# benchmarks/references/.refs (used by refs_runner.py and bench_references.py).
#
# omikuji 0.5.2 (Rust core behind cffi; needs milksnake/cffi at run time) and napkinxc 0.7.2
# (C++ core, pybind11) ship cp311 manylinux wheels, so nothing is compiled. They live in
# their own venv so their requirements never touch the skxmr dev env. matplotlib is
# installed here too: bench_references.py --plots draws its PNGs with this interpreter.
#
# Usage: bash benchmarks/references/make_refs_env.sh [--force]
#   PYTHON=python3.11 to choose the base interpreter (default: python3).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.refs"
PYTHON="${PYTHON:-python3}"
# Wheels only (--only-binary): a missing wheel must fail loudly, not start a Rust/C++ build.
SPECS=("omikuji==0.5.2" "napkinxc==0.7.2" "numpy<2.4" "scipy<1.17" "psutil" "matplotlib")

check() {
    "$VENV/bin/python" - <<'PY'
import numpy, scipy, psutil, omikuji, napkinxc.models  # noqa: F401
from importlib.metadata import version
print("python   ", __import__("sys").version.split()[0])
for pkg in ("omikuji", "napkinxc", "numpy", "scipy", "psutil", "matplotlib"):
    try:
        print(f"{pkg:10s}", version(pkg))
    except Exception:
        print(f"{pkg:10s}", "(not installed)")
PY
}

if [[ "${1:-}" == "--force" ]]; then
    rm -rf "$VENV"
fi

if [[ -x "$VENV/bin/python" ]] && check >/dev/null 2>&1; then
    echo "refs env already present at $VENV"
    check
    exit 0
fi

start=$(date +%s)
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check)
"${PIP[@]}" --upgrade pip wheel
"${PIP[@]}" --only-binary=:all: "${SPECS[@]}"
end=$(date +%s)

echo "refs env created at $VENV in $((end - start)) s"
check
