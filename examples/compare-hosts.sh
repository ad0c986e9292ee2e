#!/usr/bin/env bash
# Compare the two sample reports (both from one 2-CPU VM: all CPUs, then a cpuset of one),
# without measuring anything: the host fields that differ, then every figure side by side.
#
#   $ examples/compare-hosts.sh
#   host field    vm, 2 CPUs    vm, cpuset 1
#   cpus_allowed  [0, 1]        [1]
#   id                        vm, 2 CPUs    vm, cpuset 1
#   switch.process.same_core  2.52 µs       2.57 µs (inconclusive: noisy)
#   ...
set -euo pipefail
here=$(dirname "$0")
ostoolkit=${OSTOOLKIT:-ostoolkit}
"$ostoolkit" compare "$here/reports" --label "vm, 2 CPUs" --label "vm, cpuset 1" "$@"
