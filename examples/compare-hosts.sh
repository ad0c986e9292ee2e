#!/usr/bin/env bash
# Compare the two sample reports (both from one 2-CPU VM: all CPUs, then a cpuset of one),
# without measuring anything: the host fields that differ, then every figure side by side.
#
#   $ examples/compare-hosts.sh
#   ostoolkit compare: vm, cpuset 1 against vm, 2 CPUs
#   host field    vm, 2 CPUs  vm, cpuset 1
#   CPUs allowed  0, 1        1
#   figure                                         vm, 2 CPUs (baseline)   vm, cpuset 1
#   context switches
#     process switch, same core (net)                 3.33 µs █▁▁▁▁▄▄▇ ²      2.59 µs 0.78× [0.74–1.02]  unclear █▄▁▁▁▁▁▁
#     thread switch, same core (net)                  3.18 µs █▃▁▃▁▃█▄ ~      2.48 µs 0.78× [0.74–1.03]  unclear █▇▄▁▁▁▁▁
#   ...
#   vm, cpuset 1 vs vm, 2 CPUs: 15 slower, 3 faster, 2 more, 1 higher, 5 lower, 21 same, 27 unclear, 4 missing
set -euo pipefail
here=$(dirname "$0")
ostoolkit=${OSTOOLKIT:-ostoolkit}
"$ostoolkit" compare "$here/reports" --label "vm, 2 CPUs" --label "vm, cpuset 1" "$@"
