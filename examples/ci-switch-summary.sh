#!/usr/bin/env bash
# Measure this host's switch cost quickly, keep the JSON report, and print a markdown table
# (paste it into a CI step summary: ./ci-switch-summary.sh >> "$GITHUB_STEP_SUMMARY").
#
#   $ examples/ci-switch-summary.sh /tmp/switch.json
#   ### ostoolkit measure-switch
#   ...
#   | process switch, same core (net) | 2.46 µs | ...
set -euo pipefail
out=${1:-switch-report.json}
ostoolkit=${OSTOOLKIT:-ostoolkit}
"$ostoolkit" measure-switch --quick --json "$out" --format markdown
