#!/usr/bin/env bash
# Compare the two sample reports (both from one 2-CPU VM: all CPUs, then a cpuset of one),
# without measuring anything: the host fields that differ, then every figure side by side.
#
#   $ examples/compare-hosts.sh
#   ostoolkit compare: vm, cpuset 1 against vm, 2 CPUs
#   host field    vm, 2 CPUs  vm, cpuset 1
#   CPUs allowed  0, 1        1
#   figure                                        vm, 2 CPUs (baseline)  vm, cpuset 1
#   context switches
#     process switch, same core (net)               1.83 µs ▁▄▄█▇▄▃▄       1.82 µs 0.99× [0.98–1.01]      same    ▅▃▆█▆▅▄▁
#   ...
#     fork() as the parent sees it                 4,188 µs █▄▄▃▁▁▁▁ ²   13,073 µs 3.12× [1.97–6.79]      slower  █▃▃▄▅▄▃▂ ²
#   ...
#   vm, cpuset 1 vs vm, 2 CPUs: 7 slower, 5 faster, 2 higher, 4 lower, 38 same, 28 unclear (1 as the host moved ↕), 4 missing
set -euo pipefail
here=$(dirname "$0")
ostoolkit=${OSTOOLKIT:-ostoolkit}
"$ostoolkit" compare "$here/reports" --label "vm, 2 CPUs" --label "vm, cpuset 1" "$@"
