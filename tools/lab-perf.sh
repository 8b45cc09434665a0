#!/bin/bash
# Where the two compute nodes' flowd spend their CPU during one iperf3 VM1 -> VM2 stream across
# VXLAN (native-notes/tunnel-gso.md, "2026-12-05, 20:30-21:10 UTC, p16"): brings the flowd lab
# up in a private state directory, runs iperf3 for 14 s, records `perf record -a -g` for 6 s
# from its fifth second, reads each daemon's CPU time and the ports' counters around that
# window, prints the split of each daemon's samples (tools/perf-split.js), and takes the lab
# down (also on failure or a signal).
#
#   flock /work/ci/ns.lock tools/lab-perf.sh OUTDIR [-R]      (root; -R: data VM2 -> VM1)
#
# PERF_NODE_OPTIONS (default --perf-basic-prof) reaches the daemons through lab up, so perf can
# name JIT-compiled JS functions. Run it from a built tree (npx tsc, scripts/build-native.sh).
set -u
OUT=${1:?usage: lab-perf.sh OUTDIR [-R]}
REV=${2:-}
TREE=$(cd "$(dirname "$0")/.." && pwd)
. "$TREE/tools/lab-session.sh"
IPERF_PID=
lab_stop_extra() { [ -n "$IPERF_PID" ] && kill "$IPERF_PID" 2>/dev/null; }
lab_begin perf
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
NODE_OPTIONS="${PERF_NODE_OPTIONS:---perf-basic-prof}" lab_up
C1=$(cat "$FLOWD_LAB_DIR/C1.pid"); C2=$(cat "$FLOWD_LAB_DIR/C2.pid")
ip netns exec fl-vm2 iperf3 -s -1 -p 5299 >/dev/null 2>&1 &
sleep 0.5
ip netns exec fl-vm1 iperf3 -c 10.0.2.20 -p 5299 -t 14 $REV > "$OUT/iperf3.txt" 2>&1 &
IPERF_PID=$!
sleep 5
ports() {
  for n in C1 C2; do for b in br-int br-tun; do
    echo "== $n $b $1"; node dist/src/cli/flowctl.js --socket "$FLOWD_LAB_DIR/$n.sock" dump-ports $b 2>&1
  done; done
}
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ports before > "$OUT/ports.txt"
s1=$(cpu "$C1"); s2=$(cpu "$C2")
perf record -a -g -F 1999 -o "$OUT/perf.data" -- sleep 6 >/dev/null 2>&1
e1=$(cpu "$C1"); e2=$(cpu "$C2")
ports after >> "$OUT/ports.txt"
wait "$IPERF_PID"
IPERF_PID=
echo "C1 pid $C1: $((e1 - s1)) ticks of CPU in the 6 s window; C2 pid $C2: $((e2 - s2)) ticks (USER_HZ $(getconf CLK_TCK))"
grep -E 'receiver' "$OUT/iperf3.txt"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
node tools/perf-split.js "$OUT/perf.data" "$C1" "$C2"
