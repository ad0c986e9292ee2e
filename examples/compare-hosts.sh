#!/usr/bin/env bash
# Compare the two sample reports (both from one 2-CPU VM: all CPUs, then a cpuset of one),
# without measuring anything: the host fields that differ, then every figure side by side.
#
#   $ examples/compare-hosts.sh
#   ostoolkit compare: vm, cpuset 1 against vm, 2 CPUs
#   host field    vm, 2 CPUs  vm, cpuset 1
#   CPUs allowed  0, 1        1
#   figure                            vm, 2 CPUs (baseline)  vm, cpuset 1
#   context switches
#     process switch, same core (net)    2.52 µs ▃▁█▅▃▃▄▁ ~  2.57 µs 1.02× [0.98–1.06] unclear ▅▁▇█▇▁▅▄ ~
#     thread switch, same core (net)     2.38 µs ▃█▄▃▁▁▁▁ ~  2.98 µs 1.25× [1.23–1.28] slower  ▃▁▃▃▁█▄▄ ~
#   ...
#   vm, cpuset 1 vs vm, 2 CPUs: 12 slower, 7 faster, 1 less, 3 higher, 3 lower, 24 same, 24 unclear, 4 missing
set -euo pipefail
here=$(dirname "$0")
ostoolkit=${OSTOOLKIT:-ostoolkit}
"$ostoolkit" compare "$here/reports" --label "vm, 2 CPUs" --label "vm, cpuset 1" "$@"
