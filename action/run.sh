#!/usr/bin/env bash
# The ostoolkit GitHub Action's one step (../action.yml): install ostoolkit into a venv,
# measure this runner with `ostoolkit report`, and compare the report with a saved baseline.
# It reads the action's inputs from INPUT_* variables, so it runs without GitHub too
# (tests/os/test_action_os.py):
#
#   INPUT_SECTIONS       report --only, comma-separated (empty: every section)
#   INPUT_PRESET         quick | default | full (empty: quick)
#   INPUT_BASELINE       saved report(s) to compare with: paths or globs, one a line; a folder
#                        gives its *.json. Several are pooled as runs of one host ("saved").
#                        Empty: no comparison; nothing matching: a warning, no comparison.
#   INPUT_FAIL_ABOVE     compare --fail-above RATIO (empty: the comparison never fails)
#   INPUT_VERSION        what pip installs (empty: the action's own checkout, this file's ..)
#   INPUT_ARTIFACT_NAME  the report's file name, without .json (empty: report)
#   OSTOOLKIT            an installed ostoolkit to run instead of installing one
#
# Writes report=PATH and compare-exit=STATUS (empty without a comparison) to $GITHUB_OUTPUT;
# report and compare append their markdown to $GITHUB_STEP_SUMMARY themselves. Working files
# go under $RUNNER_TEMP/ostoolkit (a new temporary folder without RUNNER_TEMP).
# Exit status: 2 for a bad input, report's when it fails, else compare's (1: --fail-above
# found a regression, 2: a baseline that cannot be read), else 0.
set -euo pipefail

fail() {
    echo "::error title=ostoolkit::$1" >&2
    exit 2
}

output=${GITHUB_OUTPUT:-/dev/null}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

case ${INPUT_PRESET:-quick} in
    quick) preset=(--quick) ;;
    default) preset=() ;;
    full) preset=(--full) ;;
    *) fail "preset must be quick, default or full, not '${INPUT_PRESET}'" ;;
esac
sections=${INPUT_SECTIONS:-}
sections=${sections//[[:space:]]/}
name=${INPUT_ARTIFACT_NAME:-report}
if [[ $name == *[/\\\":\<\>\|*?]* || $name == *$'\n'* || $name == *$'\r'* ]]; then
    fail "artifact-name must not hold / \\ \" : < > | * ? or a line break: '$name'"
fi
fail_above=${INPUT_FAIL_ABOVE:-}
fail_above=${fail_above//[[:space:]]/}

if [[ -n ${RUNNER_TEMP:-} ]]; then
    work=$RUNNER_TEMP/ostoolkit
    mkdir -p "$work"
else
    work=$(mktemp -d -t ostoolkit-action.XXXXXX)
fi

if [[ -n ${OSTOOLKIT:-} ]]; then
    ostoolkit=$OSTOOLKIT
else
    spec=${INPUT_VERSION:-$(dirname "$here")}
    echo "::group::Install ostoolkit ($spec)"
    python3 -m venv "$work/venv"
    "$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$spec"
    echo "::endgroup::"
    ostoolkit=$work/venv/bin/ostoolkit
fi
"$ostoolkit" --version

report=$work/$name.json
rm -f "$report"
args=(report "${preset[@]}")
if [[ -n $sections ]]; then
    args+=(--only "$sections")
fi
"$ostoolkit" "${args[@]}" --json "$report"
echo "report=$report" >>"$output"

# The baseline: each line a path or a glob, expanded here without word splitting; a folder
# gives its *.json reports, as compare would, so that each report gets its own --label.
expand() {
    local IFS=
    # shellcheck disable=SC2206 # globbing wanted, splitting is not (IFS is empty)
    matches=($1)
}
baselines=()
missing=()
shopt -s nullglob
while IFS= read -r line; do
    line=${line#"${line%%[![:space:]]*}"}
    line=${line%"${line##*[![:space:]]}"}
    [[ -z $line ]] && continue
    expand "$line"
    if [[ ${#matches[@]} -eq 0 || ! -e ${matches[0]} ]]; then
        missing+=("$line")
        continue
    fi
    for match in "${matches[@]}"; do
        if [[ -d $match ]]; then
            baselines+=("$match"/*.json)
        else
            baselines+=("$match")
        fi
    done
done <<<"${INPUT_BASELINE:-}"
shopt -u nullglob
for line in "${missing[@]}"; do
    echo "::warning title=ostoolkit::no saved report matches the baseline '$line'" >&2
done
if [[ ${#baselines[@]} -eq 0 ]]; then
    if [[ ${#missing[@]} -gt 0 ]]; then
        echo "::warning title=ostoolkit::no baseline: this report is compared with nothing" >&2
    fi
    echo "compare-exit=" >>"$output"
    exit 0
fi

args=(compare "${baselines[@]}" "$report")
for _ in "${baselines[@]}"; do
    args+=(--label saved)
done
args+=(--label "this run" --format markdown)
if [[ -n $fail_above ]]; then
    args+=(--fail-above "$fail_above")
fi
status=0
"$ostoolkit" "${args[@]}" || status=$?
echo "compare-exit=$status" >>"$output"
exit "$status"
