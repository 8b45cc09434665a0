#!/bin/bash
# Where a lost TCP segment of the VXLAN lab goes (native-notes/tunnel-gso.md, "p14c"): brings
# the flowd lab up once in a private state directory, runs N iperf3 streams VM1 -> VM2 and
# VM2 -> VM1 alternating, and around each run snapshots every counter that could hold a loss:
# both daemons' `flowctl --format json stats` (underlays) and dump-ports of every bridge, `nstat -az`
# and `ip -s -s link` in every fl- namespace and the root, /proc/net/softnet_stat and
# `tc -s qdisc` per namespace. Prints, per run, iperf3's retransmits and every counter that
# moved whose name says drop/err/trunc/retrans/ofo/prune/collapse/full (tools/lab-loss-diff.js);
# the raw snapshots stay in OUTDIR/run-K/{before,after}. Takes the lab down (also on failure).
#
#   flock /work/ci/ns.lock tools/lab-loss.sh OUTDIR [RUNS] [SECONDS]     (root)
set -u
OUT=${1:?usage: lab-loss.sh OUTDIR [RUNS] [SECONDS]}
RUNS=${2:-10}
SECS=${3:-5}
TREE=$(cd "$(dirname "$0")/.." && pwd)
. "$TREE/tools/lab-session.sh"
lab_begin loss
lab_up
snap() {
  local d=$1
  mkdir -p "$d"
  for n in C1 C2 N1; do
    [ -S "$FLOWD_LAB_DIR/$n.sock" ] || continue
    node dist/src/cli/flowctl.js --socket "$FLOWD_LAB_DIR/$n.sock" --format json stats > "$d/$n.stats.json" 2>&1
    for b in br-int br-tun br-ex; do
      node dist/src/cli/flowctl.js --socket "$FLOWD_LAB_DIR/$n.sock" --format json dump-ports $b > "$d/$n.$b.ports.json" 2>/dev/null
    done
  done
  for ns in root $(ip netns list | awk '/^fl-/{print $1}'); do
    local ex=""
    [ "$ns" != root ] && ex="ip netns exec $ns"
    $ex nstat -az > "$d/$ns.nstat" 2>&1
    $ex ip -s -s -j link > "$d/$ns.link.json" 2>&1
    $ex tc -s -j qdisc > "$d/$ns.qdisc.json" 2>&1
  done
  cat /proc/net/softnet_stat > "$d/softnet_stat"
}
for k in $(seq "$RUNS"); do
  for dir in fwd rev; do
    R="$OUT/run-$k-$dir"
    mkdir -p "$R"
    rflag=""; [ $dir = rev ] && rflag="-R"
    snap "$R/before"
    ip netns exec fl-vm2 iperf3 -s -1 -p 5299 >/dev/null 2>&1 &
    sp=$!
    sleep 0.3
    ip netns exec fl-vm1 iperf3 -c 10.0.2.20 -p 5299 -t "$SECS" $rflag -J > "$R/iperf3.json" 2>&1
    wait $sp
    snap "$R/after"
    node tools/lab-loss-diff.js "$R" "$k-$dir"
  done
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
