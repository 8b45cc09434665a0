#!/bin/bash
# bench-io.sh: forwarding rate of flowd on real interfaces against the Linux bridge and Open
# vSwitch's userspace datapath (datapath_type=netdev, system = AF_PACKET ports), in one run,
# interleaved, several repetitions; then VXLAN encap (flowd -> kernel vxlan device vs. OVS
# userspace VXLAN); then iperf3 TCP through each switch. `npm run bench:io` builds and runs it.
#
#   fb-a: fb-a0 10.76.0.1  --veth--  fb-a1 ┐
#                                          ├ fb-sw: the switch under test (flowd | bridge | OVS)
#   fb-b: fb-b0 10.76.0.2  --veth--  fb-b1 ┘
#         fb-u0 10.76.10.2 --veth--  fb-u1 (underlay, VXLAN runs; 10.76.10.1 on flowd's side)
#         fb-vx kernel vxlan VNI 42 (VXLAN sink)
#
# Generator: build/tools/pktgen (tools/pktgen.c: AF_PACKET + sendmmsg, 256 frames per call)
# sends 60-byte (64 on the wire) UDP frames from fb-a0 to 10.76.3.9 and MAC_SINK, pinned to
# GEN_CPU. Every switch knows MAC_SINK on its fb-b1 side (static FDB, or learned by flowd from
# one frame); the sink counts the frames and drops them as addressed to another host.
# Forwarded pps = rx_packets of the sink interface (fb-b0, or fb-vx for VXLAN) over DUR
# seconds after WARM seconds of warm-up; median of RUNS. The switch process (flowd's node,
# ovs-vswitchd) is pinned to SW_CPU; "sw" is its CPU (100 = one core), "all" the whole
# machine's busy time (2 cores -> max 200); the Linux bridge runs in softirq, so it has no sw.
#
# PROFILE=1 (or PROFILE=tcp): instead, one flowd-p2p pps run (or one iperf3 run through flowd
# NORMAL) under node --cpu-prof, then flowd's dump-ports and its top functions.
# PERF=flowd-p2p (any config name, or tcp: iperf3 through flowd NORMAL): one run of it under `perf record -a -g`, then each cpu's top
# symbols (kernel, addon, and JIT code via --perf-basic-prof), PERF_TOP=25 lines each, and the switch
# process's samples split by call chain (sendmmsg, recv, JS, V8 compiling, ...; bench/io/perf-split.js).
# BOUND=1: also tools/fwdbound (a do-nothing C forwarder on the same sockets: the ceiling);
# BOUND=mmsg: only its sendmmsg variant (the one issue 12's ratio uses).
# AB_ENV="VAR=value ...": also flowd-p2p-ab, flowd p2p started with that environment (A/B runs of
# a switch such as FLOWD_OFFLOAD_WHOLE=0), interleaved with the others.
# B_TREE=/path/to/another/flowd/tree (built: dist/ and build/Release): also flowd-p2p-b /
# flowd-normal-b, the same runs with that tree's flowd (A/B of two builds, interleaved).
# TCP placement (all switches alike; empty = not pinned): TCP_CLI_CPU / TCP_SRV_CPU pin the iperf3
# client / server, TCP_SW_CPU the switch process in the TCP runs (default SW_CPU, as the pps runs).
# SW_NODE_OPTS="--flag ...": extra node options for every flowd run (e.g. --trace-deopt; the log is
# kept with KEEP_DIR=1 in flowd-<config>.log).
# SW_NICE=-10: every switch process (flowd, ovs-vswitchd, fwdbound) runs at that nice value, so
# other work on a shared machine does not take its core's time (the Linux bridge runs in softirq,
# outside the scheduler's fair shares, so it needs none).
# GEN_NICE=-10: the same for the pps generator (pktgen): with both, a machine loaded by other work
# gives the generator and the switch their cores, as a quiet one would.
# ONLY_L2=1: only the two-port pps runs (no VXLAN, no TCP); ONLY_TCP=1: only the TCP runs.
# TCP lines: name, Gbit/s, switch CPU ms per GB received ("-" for the bridge: no process).
# Env: DUR=4 WARM=3 (pps warm-up, every switch alike: flowd's JIT compiles for ~4 s after start on
#      a loaded machine, 5 % of its core in a 1 s-warm-up window) RUNS=3 GEN_CPU=0 SW_CPU=1 LOCK=/tmp/bench.lock (flock per measurement, so
#      concurrent benchmarks on the shared machine do not overlap) TCP_SECS=4 SKIP_OVS=1
#      TCP_WARM=4 (seconds of iperf3 through each switch before its measured run, not counted:
#      a freshly started flowd spends ~10 % of its core compiling JS in the first seconds; 0 = none)
#      TCP_RUNS=1 (rounds of the TCP runs, interleaved flowd / bridge / OVS; medians and their
#      ratios printed when > 1)
# Only namespaces fb-a, fb-b, fb-sw are made and always removed (trap); only processes this
# script started are stopped, by PID.
set -u -o pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DUR=${DUR:-4}; WARM=${WARM:-3}; RUNS=${RUNS:-3}; GEN_CPU=${GEN_CPU:-0}; SW_CPU=${SW_CPU:-1}
LOCK=${LOCK:-/tmp/bench.lock}; TCP_SECS=${TCP_SECS:-4}; TCP_WARM=${TCP_WARM:-4}; SKIP_OVS=${SKIP_OVS:-0}; TCP_RUNS=${TCP_RUNS:-1}
SW_NICE=${SW_NICE:-0}; GEN_NICE=${GEN_NICE:-0}; B_TREE=${B_TREE:-}; TCP_CLI_CPU=${TCP_CLI_CPU:-}; TCP_SRV_CPU=${TCP_SRV_CPU:-}
NA=fb-a; NB=fb-b; NSW=fb-sw
MAC_A0=02:76:00:00:01:01; MAC_A1=02:76:00:00:01:fe
MAC_B0=02:76:00:00:02:01; MAC_B1=02:76:00:00:02:fe
# The pps runs address a station "behind" fb-b0 (MAC_SINK is not fb-b0's own address): the sink
# kernel counts each frame in rx_packets and discards it as PACKET_OTHERHOST before any IP work.
# Frames to fb-b0's own MAC for an unroutable address cost the sink a route lookup, a dst
# allocation and an RCU free each, and that ran in softirq on the switch's core (36 % of it,
# measured with PERF=flowd-p2p) or, for the Linux bridge, on the generator's.
MAC_SINK=02:76:00:00:02:99
MAC_U0=02:76:00:00:0a:02; MAC_U1=02:76:00:00:0a:01; MAC_PHY=02:76:00:00:0a:fe
W=$(mktemp -d /tmp/flowd-bench-io.XXXXXX)
OVSD=$W/ovs
PKTGEN=$ROOT/build/tools/pktgen
FLOWD_PID=""; OVSDB_PID=""; VSWITCHD_PID=""; NODE_OPTS="${SW_NODE_OPTS:-}"
nsx() { ip netns exec "$@"; }
log() { echo "[$(date +%T)] $*" >&2; }

# ---------------------------------------------------------------- teardown (always)
stop_pid() { # pid: SIGTERM, then SIGKILL after 5 s
  local p=$1 i
  [ -n "$p" ] && [ -d "/proc/$p" ] || return 0
  kill -TERM "$p" 2>/dev/null
  for i in $(seq 50); do [ -d "/proc/$p" ] || return 0; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null
}
stop_flowd() { stop_pid "$FLOWD_PID"; wait "$FLOWD_PID" 2>/dev/null; FLOWD_PID=""; }
stop_ovs() {
  stop_pid "$VSWITCHD_PID"; VSWITCHD_PID=""
  stop_pid "$OVSDB_PID"; OVSDB_PID=""
}
cleanup() {
  stop_flowd; stop_ovs
  local n; for n in $NA $NB $NSW; do ip netns del $n 2>/dev/null; done
  [ "${KEEP_DIR:-0}" = 1 ] && echo "bench-io: kept $W" >&2 || rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- topology
mkveth() { # a_if a_ns a_mac b_if b_ns b_mac
  ip link add "$1" netns "$2" address "$3" type veth peer name "$4" netns "$5" address "$6"
  nsx "$2" ip link set "$1" up; nsx "$5" ip link set "$4" up
}
setup() {
  local n
  for n in $NA $NB $NSW; do
    ip netns del $n 2>/dev/null
    ip netns add $n
    nsx $n sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 net.ipv4.ip_forward=0
    nsx $n ip link set lo up
  done
  mkveth fb-a0 $NA $MAC_A0 fb-a1 $NSW $MAC_A1
  mkveth fb-b0 $NB $MAC_B0 fb-b1 $NSW $MAC_B1
  mkveth fb-u0 $NB $MAC_U0 fb-u1 $NSW $MAC_U1
  nsx $NA ip addr add 10.76.0.1/24 dev fb-a0
  nsx $NB ip addr add 10.76.0.2/24 dev fb-b0
  nsx $NB ip addr add 10.76.10.2/24 dev fb-u0
  nsx $NB ip link add fb-vx address 02:76:00:00:0b:02 type vxlan id 42 local 10.76.10.2 remote 10.76.10.1 dstport 4789 dev fb-u0 nolearning
  nsx $NB ip link set fb-vx up
  # static neighbours, so no ARP runs during a measurement
  nsx $NA ip neigh replace 10.76.0.2 lladdr $MAC_B0 dev fb-a0 nud permanent
  nsx $NB ip neigh replace 10.76.0.1 lladdr $MAC_A0 dev fb-b0 nud permanent
  nsx $NB ip neigh replace 10.76.10.1 lladdr $MAC_U1 dev fb-u0 nud permanent
}

# ---------------------------------------------------------------- switches
flowd_up() { # mode: p2p | normal | vxlan; [ab]: with the environment AB_ENV, [b]: the flowd of B_TREE
  local cfg=$W/flowd.yaml
  case $1 in
    p2p) cat > "$cfg" <<EOF
bridges:
  - name: br0
    ports: [{ name: fb-a1, ofport: 1 }, { name: fb-b1, ofport: 2 }]
    flows: ["in_port=1,actions=output:2", "in_port=2,actions=output:1"]
EOF
    ;;
    normal) cat > "$cfg" <<EOF
bridges:
  - name: br0
    ports: [{ name: fb-a1, ofport: 1 }, { name: fb-b1, ofport: 2 }]
EOF
    ;;
    vxlan)
      nsx $NSW ip addr add 10.76.10.1/24 dev fb-u1
      nsx $NSW ip neigh replace 10.76.10.2 lladdr $MAC_U0 dev fb-u1 nud permanent
      cat > "$cfg" <<EOF
bridges:
  - name: br0
    ports:
      - { name: fb-a1, ofport: 1 }
      - { name: fb-vxp, ofport: 2, type: vxlan, remote_ip: 10.76.10.2, local_ip: 10.76.10.1, key: flow }
    flows: ["in_port=1,actions=set_tunnel:42,output:2"]
EOF
    ;;
  esac
  # ip netns exec and taskset exec (no fork): $! is node's PID.
  local envs="" tree=$ROOT; [ "${2:-}" = ab ] && envs="$AB_ENV"; [ "${2:-}" = b ] && tree=$B_TREE
  ip netns exec $NSW env $envs nice -n "$SW_NICE" taskset -c "$SW_CPU" node $NODE_OPTS "$tree/dist/src/cli/flowd.js" --config "$cfg" \
    --socket "$W/flowd.sock" --pid-file "$W/flowd.pid" > "$W/flowd-$1.log" 2>&1 &
  FLOWD_PID=$!
  local i
  for i in $(seq 100); do
    node "$ROOT/dist/src/cli/flowctl.js" --socket "$W/flowd.sock" show >/dev/null 2>&1 && break
    [ -d /proc/$FLOWD_PID ] || { log "flowd died:"; cat "$W/flowd-$1.log" >&2; return 1; }
    sleep 0.1
  done
  SW_PID=$FLOWD_PID
  # NORMAL: let flowd learn fb-b0's MAC (one echo from the sink side), so it does not flood
  # and MAC_SINK (one broadcast frame from it)
  if [ "$1" = normal ]; then
    nsx $NB ping -c 1 -W 1 10.76.0.1 >/dev/null 2>&1
    nsx $NB "$PKTGEN" fb-b0 ff:ff:ff:ff:ff:ff $MAC_SINK 10.76.0.2 10.76.0.1 1 60 1 1 >/dev/null
  fi
  return 0
}
flowd_down() {
  stop_flowd
  nsx $NSW ip addr flush dev fb-u1; nsx $NSW ip neigh flush dev fb-u1 2>/dev/null
  return 0
}

# The ceiling: tools/fwdbound.c, a C forwarder on the same AF_PACKET interfaces as flowd's addon
# (RX ring + poll, separate send socket) that does no work per frame (BOUND=1 adds it).
bound_up() { # sendmmsg | txring | spin
  ip netns exec $NSW nice -n "$SW_NICE" taskset -c "$SW_CPU" "$ROOT/build/tools/fwdbound" fb-a1 fb-b1 $((WARM + DUR + 3)) "$1" > "$W/bound-$1.out" 2>&1 &
  SW_PID=$!
  sleep 0.3
}
bound_down() { stop_pid "$SW_PID"; wait "$SW_PID" 2>/dev/null; SW_PID=""; return 0; }

kbridge_up() {
  nsx $NSW ip link add fb-br type bridge stp_state 0
  nsx $NSW ip link set fb-a1 master fb-br; nsx $NSW ip link set fb-b1 master fb-br
  nsx $NSW ip link set fb-br up
  nsx $NSW bridge fdb replace $MAC_B0 dev fb-b1 master static
  nsx $NSW bridge fdb replace $MAC_SINK dev fb-b1 master static
  nsx $NSW bridge fdb replace $MAC_A0 dev fb-a1 master static
  SW_PID=""
}
kbridge_down() { nsx $NSW ip link del fb-br 2>/dev/null; return 0; }

VSCTL() { ovs-vsctl --db=unix:$OVSD/db.sock --timeout=10 "$@"; }
APPCTL() { ovs-appctl -t "$OVSD/ovs-vswitchd.ctl" "$@"; }
OFCTL() { ovs-ofctl "$1" "unix:$OVSD/$2.mgmt" "${@:3}"; }
ovs_up() { # mode: p2p | normal | vxlan; [tso]
  rm -rf "$OVSD"; mkdir -p "$OVSD"
  export OVS_RUNDIR=$OVSD OVS_LOGDIR=$OVSD OVS_DBDIR=$OVSD OVS_SYSCONFDIR=$OVSD
  ovsdb-tool create "$OVSD/conf.db" /usr/share/openvswitch/vswitch.ovsschema
  nsx $NSW ovsdb-server "$OVSD/conf.db" --remote=punix:"$OVSD/db.sock" --pidfile="$OVSD/ovsdb-server.pid" \
    --unixctl="$OVSD/ovsdb-server.ctl" --log-file="$OVSD/ovsdb-server.log" --detach --no-chdir
  OVSDB_PID=$(cat "$OVSD/ovsdb-server.pid")
  VSCTL --no-wait init
  # TCP runs: without userspace TSO, OVS reads veth frames without their vnet header, so
  # checksum-partial segments leave with bad checksums and TCP cannot connect. Read at start.
  [ "${2:-}" = tso ] && VSCTL --no-wait set Open_vSwitch . other_config:userspace-tso-enable=true
  nsx $NSW nice -n "$SW_NICE" taskset -c "$SW_CPU" ovs-vswitchd unix:"$OVSD/db.sock" --pidfile="$OVSD/ovs-vswitchd.pid" \
    --unixctl="$OVSD/ovs-vswitchd.ctl" --log-file="$OVSD/ovs-vswitchd.log" --detach --no-chdir 2>/dev/null
  VSWITCHD_PID=$(cat "$OVSD/ovs-vswitchd.pid")
  VSCTL add-br br0 -- set bridge br0 datapath_type=netdev fail_mode=secure \
    -- add-port br0 fb-a1 -- set interface fb-a1 ofport_request=1
  [ "$1" = vxlan ] || VSCTL add-port br0 fb-b1 -- set interface fb-b1 ofport_request=2
  OFCTL del-flows br0
  case $1 in
    p2p) OFCTL add-flow br0 "in_port=1,actions=output:2"; OFCTL add-flow br0 "in_port=2,actions=output:1" ;;
    normal)
      OFCTL add-flow br0 "priority=0,actions=NORMAL"
      APPCTL fdb/add br0 fb-b1 0 $MAC_B0 >/dev/null; APPCTL fdb/add br0 fb-a1 0 $MAC_A0 >/dev/null
      APPCTL fdb/add br0 fb-b1 0 $MAC_SINK >/dev/null ;;
    vxlan)
      VSCTL add-br br-phy -- set bridge br-phy datapath_type=netdev fail_mode=standalone other_config:hwaddr=$MAC_PHY \
        -- add-port br-phy fb-u1 -- set interface fb-u1 ofport_request=1 \
        -- add-port br0 vx0 -- set interface vx0 type=vxlan ofport_request=10 \
           options:remote_ip=10.76.10.2 options:local_ip=10.76.10.1 options:key=42
      nsx $NSW ip addr replace 10.76.10.1/24 dev br-phy; nsx $NSW ip link set br-phy up
      sleep 1
      APPCTL ovs/route/add 10.76.10.0/24 br-phy >/dev/null 2>&1 || true
      APPCTL tnl/arp/set br-phy 10.76.10.2 $MAC_U0 >/dev/null
      APPCTL fdb/add br-phy fb-u1 0 $MAC_U0 >/dev/null
      OFCTL add-flow br0 "in_port=1,actions=output:10" ;;
  esac
  SW_PID=$VSWITCHD_PID
}
ovs_down() { stop_ovs; unset OVS_RUNDIR OVS_LOGDIR OVS_DBDIR OVS_SYSCONFDIR; return 0; }

# ---------------------------------------------------------------- one measurement
ticks() { # pid -> utime+stime of the whole process (all threads), clock ticks
  [ -n "$1" ] && [ -r "/proc/$1/stat" ] && awk '{print $14 + $15}' "/proc/$1/stat" || echo 0
}
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
# measure NAME SINK_NS SINK_IF -> "NAME pps sw% all% offered" on stdout (SW_PID set by *_up)
measure() {
  local name=$1 sns=$2 sif=$3
  local rx=/sys/class/net/$sif/statistics/rx_packets
  exec 9>"$LOCK"; flock -w 300 9   # other benchmarks on this machine wait for us, and we for them
  ip netns exec $NA nice -n "$GEN_NICE" taskset -c "$GEN_CPU" "$PKTGEN" fb-a0 "$4" $MAC_A0 10.76.0.1 10.76.3.9 $((WARM + DUR + 1)) > "$W/gen.out" 2>&1 &
  local gpid=$!
  sleep "$WARM"
  local r0 r1 s0 s1 b0 a0 b1 a1 t0 t1
  r0=$(nsx "$sns" cat "$rx"); s0=$(ticks "$SW_PID"); read -r b0 a0 < <(busy); t0=$(date +%s.%N)
  sleep "$DUR"
  r1=$(nsx "$sns" cat "$rx"); s1=$(ticks "$SW_PID"); read -r b1 a1 < <(busy); t1=$(date +%s.%N)
  wait "$gpid" 2>/dev/null
  flock -u 9; exec 9>&-
  local offered; offered=$(awk '/pktgen: sent/{print $9}' "$W/gen.out")
  awk -v n="$name" -v r0="$r0" -v r1="$r1" -v s0="$s0" -v s1="$s1" -v b0="$b0" -v b1="$b1" -v a0="$a0" -v a1="$a1" \
      -v t0="$t0" -v t1="$t1" -v hz="$(getconf CLK_TCK)" -v nc="$(nproc)" -v sw="$SW_PID" -v off="${offered:-0}" \
    'BEGIN{d=t1-t0; printf "%s %.0f %s %.0f %.0f\n", n, (r1-r0)/d, (sw=="")?"-":sprintf("%.0f",(s1-s0)/hz/d*100), (b1-b0)/(a1-a0)*100*nc, off}'
}

run_cfg() { # name -> one measurement line (sets the switch up, measures, tears it down)
  local name=$1 line=""
  case $name in
    flowd-p2p)    flowd_up p2p    && line=$(measure $name $NB fb-b0 $MAC_SINK); flowd_down ;;
    flowd-normal) flowd_up normal && line=$(measure $name $NB fb-b0 $MAC_SINK); flowd_down ;;
    flowd-p2p-ab) flowd_up p2p ab && line=$(measure $name $NB fb-b0 $MAC_SINK); flowd_down ;;
    flowd-p2p-b)  flowd_up p2p b  && line=$(measure $name $NB fb-b0 $MAC_SINK); flowd_down ;;
    kbridge)      kbridge_up      && line=$(measure $name $NB fb-b0 $MAC_SINK); kbridge_down ;;
    bound-mmsg)   bound_up sendmmsg && line=$(measure $name $NB fb-b0 $MAC_SINK); bound_down ;;
    bound-txring) bound_up txring && line=$(measure $name $NB fb-b0 $MAC_SINK); bound_down ;;
    bound-spin)   bound_up spin && line=$(measure $name $NB fb-b0 $MAC_SINK); bound_down ;;
    ovs-p2p)      ovs_up p2p      && line=$(measure $name $NB fb-b0 $MAC_SINK); ovs_down ;;
    ovs-normal)   ovs_up normal   && line=$(measure $name $NB fb-b0 $MAC_SINK); ovs_down ;;
    flowd-vxlan)  flowd_up vxlan  && line=$(measure $name $NB fb-vx $MAC_SINK); flowd_down ;;
    ovs-vxlan)    ovs_up vxlan    && line=$(measure $name $NB fb-vx $MAC_SINK); ovs_down ;;
  esac
  [ -n "$line" ] || line="$name 0 - 0 0"
  log "$line"
  echo "$line" >> "$W/runs.txt"
}

median() { # name -> the run with the median pps
  awk -v n="$1" '$1==n' "$W/runs.txt" | sort -k2,2n | awk '{a[NR]=$0} END{print a[int((NR+1)/2)]}'
}

tcp_run() { # name up down
  local name=$1 up=$2 down=$3 out bps
  $up >/dev/null || { echo "$name 0"; return; }
  local scpu=() ccpu=()
  [ -n "$TCP_SRV_CPU" ] && scpu=(taskset -c "$TCP_SRV_CPU")
  [ -n "$TCP_CLI_CPU" ] && ccpu=(taskset -c "$TCP_CLI_CPU")
  ip netns exec $NB "${scpu[@]}" iperf3 -s -1 -p 5276 > /dev/null 2>&1 &   # exec, no fork: $! is iperf3
  local spid=$!
  sleep 0.5
  if [ "$TCP_WARM" != 0 ]; then  # warm-up through the switch, not measured (flowd's JIT compiles here)
    nsx $NA "${ccpu[@]}" iperf3 -c 10.76.0.2 -p 5276 -t "$TCP_WARM" --connect-timeout 5000 >/dev/null 2>&1
    stop_pid "$spid"; wait "$spid" 2>/dev/null
    ip netns exec $NB "${scpu[@]}" iperf3 -s -1 -p 5276 > /dev/null 2>&1 &
    spid=$!
    sleep 0.5
  fi
  local t0 t1; t0=$(ticks "$SW_PID")
  out=$(nsx $NA "${ccpu[@]}" iperf3 -c 10.76.0.2 -p 5276 -t "$TCP_SECS" --json --connect-timeout 5000 2>/dev/null)
  t1=$(ticks "$SW_PID")
  printf '%s' "$out" > "$W/iperf-$name.json"
  local bytes
  read -r bps bytes < <(printf '%s' "$out" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{const r=JSON.parse(s).end.sum_received;console.log(r.bits_per_second,r.bytes)}catch{console.log(0,0)}})')
  stop_pid "$spid"; wait "$spid" 2>/dev/null
  $down
  # Gbit/s, then the switch process's CPU per GB received (ms; "-" without a process: the bridge)
  awk -v n="$name" -v b="$bps" -v by="$bytes" -v sw="$SW_PID" -v dt=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" \
    'BEGIN{printf "%s %.3f %s\n", n, b/1e9, (sw=="" || by==0) ? "-" : sprintf("%.0f", dt/hz*1000/(by/1e9))}'
}

# ---------------------------------------------------------------- main
[ "$(id -u)" = 0 ] || { echo "bench-io: run as root" >&2; exit 1; }
for c in taskset flock gcc iperf3; do command -v $c >/dev/null || { echo "bench-io: missing $c" >&2; exit 1; }; done
if [ "$SKIP_OVS" != 1 ]; then
  for c in ovs-vsctl ovs-vswitchd ovsdb-server ovsdb-tool; do
    command -v $c >/dev/null || { echo "bench-io: missing $c (apt-get install openvswitch-switch, or SKIP_OVS=1)" >&2; exit 1; }
  done
fi
[ -f "$ROOT/dist/src/cli/flowd.js" ] || { echo "bench-io: build first (npx tsc -p .)" >&2; exit 1; }
[ -f "$ROOT/build/Release/flowd_io.node" ] || { echo "bench-io: native addon missing (npm run build:native)" >&2; exit 1; }
bash "$ROOT/scripts/build-tools.sh" || exit 1
setup
L2="flowd-p2p flowd-normal kbridge"; VX="flowd-vxlan"
[ "$SKIP_OVS" = 1 ] || { L2="$L2 ovs-p2p ovs-normal"; VX="$VX ovs-vxlan"; }
[ "${BOUND:-0}" = 1 ] && L2="$L2 bound-mmsg bound-txring bound-spin"
[ "${BOUND:-0}" = mmsg ] && L2="$L2 bound-mmsg"
[ -n "${AB_ENV:-}" ] && L2="flowd-p2p flowd-p2p-ab${L2#flowd-p2p}"
[ -n "$B_TREE" ] && L2="flowd-p2p flowd-p2p-b${L2#flowd-p2p}"
[ -z "$B_TREE" ] || [ -f "$B_TREE/dist/src/cli/flowd.js" ] || { echo "bench-io: B_TREE has no dist/src/cli/flowd.js" >&2; exit 1; }
log "$(nproc) cpus, kernel $(uname -r), node $(node --version), generator on cpu $GEN_CPU, switch on cpu $SW_CPU, ${RUNS}x${DUR}s"
if [ "${PERF:-}" != "" ]; then   # one run of config $PERF under `perf record -a`: kernel + JIT symbols per cpu
  command -v perf >/dev/null || { echo "bench-io: PERF needs perf (apt-get install linux-perf)" >&2; exit 1; }
  case $PERF in flowd-*|tcp) NODE_OPTS="$NODE_OPTS --perf-basic-prof" ;; esac
  pdelay=$((WARM + 1)); [ "$PERF" = tcp ] && pdelay=$((pdelay + TCP_WARM))
  ( sleep "$pdelay"; perf record -a -g -o "$W/perf.data" -- sleep "$DUR" >/dev/null 2>&1 ) &
  ppid=$!
  if [ "$PERF" = tcp ]; then TCP_SECS=$((WARM + DUR + 2)); tcp_run flowd-normal "flowd_up normal" flowd_down; else run_cfg "$PERF"; fi
  wait "$ppid"
  for c in 0 1; do
    echo "# cpu $c: top symbols (self %)"
    perf report -i "$W/perf.data" --no-children --cpu $c --sort sym --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -"${PERF_TOP:-25}"
  done
  if [ -n "${SW_PID:-}" ]; then   # flowd / ovs-vswitchd (fwdbound's down clears it)
    echo "# the switch process (pid $SW_PID, all its threads) by call chain: bench/io/perf-split.js"
    perf script -i "$W/perf.data" --pid "$SW_PID" -F time,ip,sym,dso 2>/dev/null | node "$ROOT/bench/io/perf-split.js"
  fi
  exit 0
fi
if [ "${PROFILE:-0}" != 0 ]; then   # one flowd run under the V8 profiler, then its top functions
  NODE_OPTS="$NODE_OPTS --cpu-prof --cpu-prof-dir=$W/prof"
  if [ "$PROFILE" = tcp ]; then
    tcp_run flowd-normal-profiled "flowd_up normal" true
  else
    flowd_up p2p && measure flowd-p2p-profiled $NB fb-b0 $MAC_SINK
  fi
  node "$ROOT/dist/src/cli/flowctl.js" --socket "$W/flowd.sock" dump-ports br0
  flowd_down
  node "$ROOT/bench/io/cpuprofile-top.js" "$(ls "$W"/prof/*.cpuprofile | head -1)" 30
  exit 0
fi
[ "${ONLY_TCP:-0}" = 1 ] && RUNS=0
VXRUNS=$RUNS; [ "${ONLY_L2:-0}" = 1 ] && VXRUNS=0
for r in $(seq "$RUNS"); do for c in $L2; do run_cfg "$c"; done; done
for r in $(seq "$VXRUNS"); do for c in $VX; do run_cfg "$c"; done; done

[ "${ONLY_TCP:-0}" = 1 ] || {
echo "# 64-byte UDP frames, one generator core (pktgen), median of $RUNS x ${DUR}s; $(nproc) cpus, $(uname -r), $(date -Is)"
echo "# name             fwd_pps  sw_cpu%  all_cpu%  offered_pps  fwd/offered  kpps_per_sw_core"
RAN="$L2"; [ "$VXRUNS" -gt 0 ] && RAN="$L2 $VX"
for c in $RAN; do median "$c"; done | awk '{printf "%-16s %9s %8s %9s %12s %12.2f %17s\n", $1, $2, $3, $4, $5, ($5>0)?$2/$5:0, ($3=="-"||$3==0)?"-":sprintf("%.0f",$2/$3/10)}' | tee "$W/summary.txt"
pps() { awk -v n="$1" '$1==n{print $2}' "$W/summary.txt"; }
ratio() { awk -v a="$(pps "$1")" -v b="$(pps "$2")" -v l="$3" 'BEGIN{if (b>0) printf "%-28s %.2f\n", l, a/b; else printf "%-28s n/a\n", l}'; }
echo "# ratios (forwarded pps)"
ratio flowd-p2p kbridge "flowd-p2p / kbridge"
ratio flowd-normal kbridge "flowd-normal / kbridge"
if [ "$SKIP_OVS" != 1 ]; then
  ratio flowd-p2p ovs-p2p "flowd-p2p / ovs-p2p"
  ratio flowd-normal ovs-normal "flowd-normal / ovs-normal"
  [ "$VXRUNS" -gt 0 ] && ratio flowd-vxlan ovs-vxlan "flowd-vxlan / ovs-vxlan"
  [ "${BOUND:-0}" != 0 ] && ratio bound-mmsg ovs-p2p "ceiling (fwdbound) / ovs-p2p"
fi
[ "${BOUND:-0}" != 0 ] && ratio flowd-p2p bound-mmsg "flowd-p2p / ceiling"
if [ -n "$B_TREE" ]; then
  [ "${BOUND:-0}" != 0 ] && ratio flowd-p2p-b bound-mmsg "flowd-p2p(B_TREE) / ceiling"
  ratio flowd-p2p flowd-p2p-b "flowd-p2p / flowd-p2p(B_TREE)"
fi
}
[ "${ONLY_L2:-0}" = 1 ] && exit 0
echo "# iperf3 TCP, ${TCP_SECS}s after ${TCP_WARM}s unmeasured warm-up, default offloads (Gbit/s), $TCP_RUNS round(s), load $(cut -d' ' -f1-3 /proc/loadavg)"
TCP_SW_CPU=${TCP_SW_CPU-$SW_CPU}; [ -n "$TCP_SW_CPU" ] || TCP_SW_CPU=0-$(($(nproc) - 1))
SW_CPU=$TCP_SW_CPU
echo "# placement: switch cpu $SW_CPU, iperf3 client cpu ${TCP_CLI_CPU:-any}, server cpu ${TCP_SRV_CPU:-any}, switch nice $SW_NICE"
for r in $(seq "$TCP_RUNS"); do
  tcp_run flowd-normal "flowd_up normal" flowd_down >> "$W/tcp.txt"
  [ -n "$B_TREE" ] && tcp_run flowd-normal-b "flowd_up normal b" flowd_down >> "$W/tcp.txt"
  [ -n "${AB_ENV:-}" ] && tcp_run flowd-normal-ab "flowd_up normal ab" flowd_down >> "$W/tcp.txt"
  tcp_run kbridge kbridge_up kbridge_down >> "$W/tcp.txt"
  [ "$SKIP_OVS" = 1 ] || tcp_run ovs-normal "ovs_up normal tso" ovs_down >> "$W/tcp.txt"
  log "tcp round $r: $(awk -v k="$r" '{c[$1]++; if (c[$1]==k) printf "%s %s (%s ms/GB)  ", $1, $2, $3}' "$W/tcp.txt")load $(cut -d' ' -f1 /proc/loadavg)"
done
cat "$W/tcp.txt"
# Medians per switch, then the ratios of the medians.
awk '{v[$1]=v[$1] " " $2} END{for (n in v) print n v[n]}' "$W/tcp.txt" | while read -r n vals; do
  printf '%s %s\n' "$n" "$(printf '%s\n' $vals | sort -g | awk '{a[NR]=$1} END{print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}')"
done > "$W/tcp-median.txt"
[ "$TCP_RUNS" -gt 1 ] && { echo "# medians"; cat "$W/tcp-median.txt"; }
echo "# switch CPU per GB received (ms, median)"
awk '$3!="-"{v[$1]=v[$1] " " $3} END{for (n in v) print n v[n]}' "$W/tcp.txt" | while read -r n vals; do
  printf '%s %s\n' "$n" "$(printf '%s\n' $vals | sort -g | awk '{a[NR]=$1} END{print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}')"
done
awk '{g[$1]=$2} END{
  if (g["ovs-normal"]>0) printf "%-28s %.2f\n", "tcp flowd / ovs", g["flowd-normal"]/g["ovs-normal"];
  if (g["kbridge"]>0) printf "%-28s %.2f\n", "tcp flowd / bridge", g["flowd-normal"]/g["kbridge"];
  if (g["flowd-normal-b"]>0 && g["kbridge"]>0) printf "%-28s %.2f\n", "tcp flowd(B_TREE) / bridge", g["flowd-normal-b"]/g["kbridge"];
  if (g["flowd-normal-b"]>0) printf "%-28s %.2f\n", "tcp flowd / flowd(B_TREE)", g["flowd-normal"]/g["flowd-normal-b"]}' "$W/tcp-median.txt"
