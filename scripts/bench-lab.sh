#!/usr/bin/env bash
# TCP throughput across the DVR lab (one flowd per node) against the same topology forwarded by
# the Linux kernel (bridges + kernel vxlan + a routing node namespace), measured in one run,
# rounds interleaved. Installs what is missing and builds first (scripts/setup.sh).
#   bench-lab.sh [--topology FILE] [--rounds N] [--reps N] [--time S] [--omit S (1)] [--json FILE]
#   bench-lab.sh --compare port-security [--topology FILE] [--from VM1 --to VM2] ...
#                                the flowd lab with every port in a security group that accepts
#                                the stream against the same topology with port security off
#   bench-lab.sh --compare snat [--topology FILE] ...   a VM through SNAT on the network node
#                                against the VM with a floating IP, both to the upstream host
#   bench-lab.sh --compare build --build-b DIR ...   this tree's flowd against DIR's (another built
#                                worktree), the lab with one then the other, alternating per round;
#                                --restart b: only DIR's daemons restarted after lab up (A/A of age)
#   bench-lab.sh profile [--node C1] [--time S] [--out DIR]   one daemon under node --cpu-prof
# Needs root and iperf3. Uses `fl-` (the lab's) and `fk-` namespaces; waits while another run
# holds `fl-` namespaces, and removes only what it made, also when interrupted.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >&2
exec node dist/src/cli/lab-bench.js "$@"
