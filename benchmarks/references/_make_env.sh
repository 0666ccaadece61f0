# Shared by make_pecos_env.sh and make_refs_env.sh (sourced, not run): creates a
# reference-library venv idempotently. The caller sets NAME (for the messages) and
# VENV, defines install (the pip installs, with "${PIP[@]}") and check (imports and
# versions, see check_env), then runs: make_env "$@"   (argument: [--force]).
#   PYTHON=python3.11 chooses the base interpreter (default: python3).
set -euo pipefail
PYTHON="${PYTHON:-python3}"

# check_env "PYTHON STATEMENTS" PKG...: run the statements in the venv (imports, asserts),
# then print the python version and each package's installed version.
check_env() {
    local code="$1"
    shift
    "$VENV/bin/python" - "$@" <<PY
$code
import sys
from importlib.metadata import version
print("python    ", sys.version.split()[0])
for pkg in sys.argv[1:]:
    try:
        print(f"{pkg:10s}", version(pkg))
    except Exception:
        print(f"{pkg:10s}", "(not installed)")
PY
}

make_env() {
    if [[ "${1:-}" == "--force" ]]; then
        rm -rf "$VENV"
    fi
    if [[ -x "$VENV/bin/python" ]] && check >/dev/null 2>&1; then
        echo "$NAME env already present at $VENV"
        check
        return 0
    fi
    local start end
    start=$(date +%s)
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check)
    "${PIP[@]}" --upgrade pip wheel
    install
    end=$(date +%s)
    echo "$NAME env created at $VENV in $((end - start)) s"
    check
}
