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
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/_make_env.sh"
NAME=refs
VENV="$HERE/.refs"
# Wheels only (--only-binary): a missing wheel must fail loudly, not start a Rust/C++ build.
SPECS=("omikuji==0.5.2" "napkinxc==0.7.2" "numpy<2.4" "scipy<1.17" "psutil" "matplotlib")

check() {
    check_env "import numpy, scipy, psutil, omikuji, napkinxc.models  # noqa: F401" \
        omikuji napkinxc numpy scipy psutil matplotlib
}

install() {
    "${PIP[@]}" --only-binary=:all: "${SPECS[@]}"
}

make_env "$@"
