#!/bin/bash
# Which hop of the VXLAN lab puts a TCP segment out of order (native-notes/tunnel-gso.md, p14c):
# brings the flowd lab up in a private state directory, runs N iperf3 streams VM1 -> VM2 of S
# seconds, each with tcpdump (headers only) at four points: what flowd C1 reads from VM1
# (fl-c1 vm1-host), the VXLAN frames C2 reads from the underlay (fl-c2 eth1), what flowd C2
# sends to VM2 (fl-c2 vm2-host) and what VM2 receives (fl-vm2 eth0). A run whose sender
# retransmitted 10 segments or more keeps its captures and gets tools/tcp-order.py on each;
# the others' captures are deleted. Takes the lab down (also on failure).
#   flock /work/ci/ns.lock tools/lab-reorder.sh OUTDIR [RUNS] [SECONDS]     (root)
# PIN_ALT=1: even runs put VM1's iperf3 and the C1 daemon (all its threads) on cpu 0, odd runs
# let them run anywhere (taskset), and every run prints the late frames at C1's input.
# RPS=MASK: before the runs, rps_cpus=MASK on the nodes' VM-facing veth ends (fl-c1 vm1-host,
# fl-c2 vm2-host), so the kernel queues a flow's frames from the VM to one cpu's backlog.
set -u
OUT=${1:?usage: lab-reorder.sh OUTDIR [RUNS] [SECONDS]}
RUNS=${2:-10}
SECS=${3:-5}
KEEP_MIN=${KEEP_MIN:-10}  # keep the captures of runs with at least this many retransmits
TREE=$(cd "$(dirname "$0")/.." && pwd)
. "$TREE/tools/lab-session.sh"
TD_PIDS=
stop_td() { for p in $TD_PIDS; do kill -INT "$p" 2>/dev/null; done; for p in $TD_PIDS; do wait "$p" 2>/dev/null; done; TD_PIDS=; }
lab_stop_extra() { stop_td; }
lab_begin reorder
lab_up
if [ -n "${RPS:-}" ]; then
  ip netns exec fl-c1 sh -c "echo $RPS > /sys/class/net/vm1-host/queues/rx-0/rps_cpus"
  ip netns exec fl-c2 sh -c "echo $RPS > /sys/class/net/vm2-host/queues/rx-0/rps_cpus"
  echo "rps_cpus: $(ip netns exec fl-c1 cat /sys/class/net/vm1-host/queues/rx-0/rps_cpus)"
fi
POINTS="fl-c1:vm1-host fl-c2:eth1 fl-c2:vm2-host fl-vm2:eth0"
for k in $(seq "$RUNS"); do
  R="$OUT/run-$k"
  mkdir -p "$R"
  for p in $POINTS; do
    ns=${p%%:*}; dev=${p#*:}
    f="udp port 4789"; [ "$dev" != eth1 ] && f="tcp dst port 5299"
    ip netns exec "$ns" tcpdump -i "$dev" -s 128 -B 65536 -w "$R/$ns-$dev.pcap" $f 2>"$R/$ns-$dev.log" &
    TD_PIDS="$TD_PIDS $!"
  done
  sleep 1
  PIN=""
  if [ "${PIN_ALT:-0}" = 1 ]; then
    cpus=0-$(($(nproc) - 1)); [ $((k % 2)) = 0 ] && { cpus=0; PIN="taskset -c 0"; }
    taskset -a -cp "$cpus" "$(cat "$FLOWD_LAB_DIR/C1.pid")" >/dev/null
  fi
  ip netns exec fl-vm2 iperf3 -s -1 -p 5299 >/dev/null 2>&1 &
  sp=$!
  sleep 0.3
  ip netns exec fl-vm1 $PIN iperf3 -c 10.0.2.20 -p 5299 -t "$SECS" -J > "$R/iperf3.json" 2>&1
  wait $sp
  sleep 0.5
  stop_td
  retr=$(python3 -c "import json,sys; print(json.load(open('$R/iperf3.json'))['end']['sum_sent']['retransmits'])" 2>/dev/null || echo -1)
  echo "run $k${PIN:+ (VM1 iperf3 and C1 on cpu 0)}: retransmits $retr; $(grep -h 'dropped by kernel' "$R"/*.log | tr '\n' ' ')"
  [ "${PIN_ALT:-0}" = 1 ] || [ -n "${RPS:-}" ] && python3 tools/tcp-order.py "$R/fl-c1-vm1-host.pcap" | head -1
  if [ "$retr" -ge "$KEEP_MIN" ]; then
    for p in $POINTS; do ns=${p%%:*}; dev=${p#*:}; python3 tools/tcp-order.py "$R/$ns-$dev.pcap"; done
  else
    rm -f "$R"/*.pcap
  fi
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
