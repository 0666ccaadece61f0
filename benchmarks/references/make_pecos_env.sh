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
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/_make_env.sh"
NAME=pecos
VENV="$HERE/.pecos"
TORCH_SPEC="torch==2.13.0"

check() {
    check_env "import numpy, scipy, torch, psutil, pecos
import pecos.xmc.xlinear.model  # noqa: F401  (imports the compiled core)
assert int(numpy.__version__.split('.')[0]) < 2, numpy.__version__" \
        libpecos numpy scipy torch scikit-learn psutil
}

install() {
    "${PIP[@]}" "$TORCH_SPEC"
    # Keep torch pinned while resolving libpecos so a plain `torch` requirement can't upgrade it.
    "${PIP[@]}" "$TORCH_SPEC" "numpy<2" "scipy<1.14" libpecos psutil
}

make_env "$@"
