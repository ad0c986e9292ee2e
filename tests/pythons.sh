#!/usr/bin/env bash
# Every CPython that pyproject.toml promises (3.10 to 3.13) and this machine has, besides the one
# the main suite ran under: the unit tests, and one short run of each command from ostoolkit's
# wheel installed into a fresh venv. A version that is not here is skipped with one line.
# Usage: tests/pythons.sh [MAIN_PYTHON]   (MAIN_PYTHON: the interpreter of .venv, skipped)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
main=${1:-.venv/bin/python}
main_version=$("$main" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
work=$(mktemp -d "${TMPDIR:-/tmp}/ostoolkit-pythons.XXXXXX")
trap 'rm -rf "$work"' EXIT

find_python() {  # a working interpreter of CPython $1, on PATH or under pyenv, or nothing
    local candidate
    for candidate in "$(command -v "python$1" 2>/dev/null || true)" \
        $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$1".*/bin/python 2>/dev/null | sort -rV); do
        # A pyenv shim is on PATH even where that version is not selected: ask it.
        if [ -n "$candidate" ] && "$candidate" -c "import sys, venv
assert '%d.%d' % sys.version_info[:2] == '$1'" 2>/dev/null; then
            echo "$candidate"
            return
        fi
    done
}

# The wheel, built from a copy of the sources (a build writes build/ beside what it builds).
"$main" tests/harness/paths.py "$repo" "$work/src"
"$main" -m pip wheel --quiet --no-deps -w "$work/wheels" "$work/src"
wheel=$(ls "$work"/wheels/ostoolkit-*.whl)

for version in 3.10 3.11 3.12 3.13; do
    if [ "$version" = "$main_version" ]; then
        echo "python $version: the main suite's own; not run again"
        continue
    fi
    python=$(find_python "$version" || true)
    if [ -z "$python" ]; then
        echo "python $version: not on this machine; skipped"
        continue
    fi
    echo "python $version: $python"
    venv="$work/venv-$version"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet "$wheel[db]" pytest pytest-timeout jsonschema 2>&1 |
        { grep -v "^WARNING: Location" || true; }
    # The unit tests on the checkout's sources (python -m puts them first on sys.path); the
    # commands below from the installed wheel.
    if ! "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/unit >"$work/unit.txt" 2>&1; then
        echo "python $version: the unit tests failed:" >&2
        grep -v "^\.*\( *\[ *[0-9]*%\]\)\?$" "$work/unit.txt" | tail -n 40 >&2
        exit 1
    fi
    echo "python $version: $(tail -n 1 "$work/unit.txt")"
    ostoolkit="$venv/bin/ostoolkit"
    runs=(
        "host"
        "measure-switch --quick"
        "switch-rate --quick"
        "measure-spawn --quick"
        "measure-memory --quick"
        "fork-tree"
        "states --quick"
        "clone"
        "connections --quick"
        "compare $repo/examples/reports/a-vm-2cpus.json $repo/examples/reports/b-vm-cpuset1.json"
    )
    for run in "${runs[@]}"; do
        # shellcheck disable=SC2086  # each run is a command line of plain words
        if ! "$ostoolkit" $run --json "$work/out.json" >"$work/out.txt" 2>"$work/err.txt"; then
            echo "python $version: ostoolkit $run failed:" >&2
            tail -n 20 "$work/err.txt" >&2
            exit 1
        fi
    done
    echo "python $version: ${#runs[@]} commands ran"
done
