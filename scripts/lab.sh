#!/usr/bin/env bash
# flowd's main job: the multi-node DVR lab in network namespaces on this machine.
# Installs what is missing and builds first (scripts/setup.sh), then:
#   lab.sh [up [TOPOLOGY.yaml]]  bring the topology up (default: the acceptance topology of
#                                dvr-reference.md, examples/topologies/reference.yaml), one flowd
#                                per node, ping across it, print what happened, leave it up
#   lab.sh up --store etcd [--etcd-members 3] [TOPOLOGY]
#                                the same with the topology in etcd: etcd (1 or 3 members) in
#                                namespaces fl-etcdN on the underlay, the topology pushed there,
#                                every node's flowd reading and watching it (docs/etcd.md)
#   lab.sh status                daemons, namespaces, packet counts
#   lab.sh check                 the acceptance checks with captures, PASS/FAIL per expectation
#   lab.sh failover              HA topologies (examples/topologies/ha.yaml): kill the master's
#                                flowd, then cut the new master's underlay; ping gaps in ms
#   lab.sh down                  stop the daemons and delete everything the lab made
#   lab.sh demo                  the offline replay demo (examples/demo)
# Needs root (namespaces, raw sockets). State lives in $FLOWD_LAB_DIR (default /run/flowd-lab).
set -euo pipefail
cd "$(dirname "$0")/.."
cmd=${1:-up}
case "$cmd" in
  down|status|check|failover) [ -f dist/src/cli/lab.js ] || bash scripts/setup.sh >&2 ;;
  *) bash scripts/setup.sh >&2 ;;
esac
case "$cmd" in
  up|down|status|check|failover)
    shift || true
    exec node dist/src/cli/lab.js "$cmd" "$@"
    ;;
  demo)
    out=${OUT_DIR:-out/demo}
    echo "== flowd replay: examples/demo/demo.yaml (bridge br0: vm1, vm2, vm3; flows in demo.flows)"
    node dist/src/cli/flowd.js replay --config examples/demo/demo.yaml \
      --in vm1=examples/demo/vm1-in.pcap --in vm2=examples/demo/vm2-in.pcap --out-dir "$out"
    for f in "$out"/*.pcap; do
      echo
      echo "== frames sent on port $(basename "$f" .pcap) ($f)"
      tcpdump -nr "$f" 2>/dev/null | sed 's/^/  /'
    done
    ;;
  *)
    echo "usage: $0 [up [TOPOLOGY] | status | check | down | demo]" >&2
    exit 2
    ;;
esac
