#!/usr/bin/env bash
# Makes this machine node NODE of a DVR topology and starts its flowd: the provisioning of the
# Vagrant node VMs (Vagrantfile), also usable inside a network namespace that stands in for one.
#
#   provision-node.sh NODE TOPOLOGY [--nic DEV=MAC]... [--ns-prefix P] [--state-dir DIR]
#                     [--socket PATH] [--no-systemd] [--skip-setup] [--unit-root DIR] [--store URL]
#
#   1. scripts/setup.sh: install what is missing and build flowd (skipped with --skip-setup).
#   2. node-setup up (src/cli/node-setup.ts, src/lab/node-setup.ts): name the NICs by MAC as the topology wants them
#      (the underlay device from the topology's underlay.mac; others such as ext1 from --nic),
#      local_ip on the underlay device, VM ports of NODE as namespaces <prefix><port> (fl-vm1,
#      the same names as the namespace lab), DIR/NODE.yaml for the daemon.
#   3. the daemon:
#      default       a systemd unit flowd@NODE (enabled, (re)started); its ExecStartPre runs
#                    node-setup up again, so NIC names and VM namespaces come back after a reboot.
#      --unit-root DIR  only write the unit and its environment file under DIR (DIR/etc/...),
#                    no systemctl, no NIC or namespace changes (for tests and image builds).
#      --no-systemd  flowd as a plain background process of this script (pid in DIR/NODE.pid,
#                    log in DIR/NODE.log); a daemon an earlier run of this script left in DIR
#                    is stopped first, by that pid.
#   --store etcd://HOST:PORT[,...]/PREFIX: the daemon reads the topology from etcd (docs/etcd.md),
#      not from the file: after node-setup (the underlay address is needed to reach etcd) the
#      file is pushed there (`flowctl topology push`: validated, only the keys that differ, so
#      every node pushing the same file writes once), retried for up to 5 minutes while etcd
#      comes up, and flowd runs with `--topology URL`.
#   Then it waits until the daemon answers on its control socket and prints `flowctl show`.
# Defaults: --ns-prefix fl-, --state-dir /run/flowd, socket DIR/flowd.sock (flowctl's default
# with the default DIR). Needs root. Idempotent: run it again after a topology change.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)

usage() { sed -n '4,5p' "$0" | sed 's/^# *//' >&2; exit 2; }
[ $# -ge 2 ] || usage
NODE=$1; TOPOLOGY=$2; shift 2
NS_PREFIX=fl-; STATE_DIR=/run/flowd; SOCKET=""; SYSTEMD=1; SETUP=1; NICS=(); UNIT_ROOT=""; STORE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --nic) NICS+=(--nic "$2"); shift 2 ;;
    --ns-prefix) NS_PREFIX=$2; shift 2 ;;
    --state-dir) STATE_DIR=$2; shift 2 ;;
    --socket) SOCKET=$2; shift 2 ;;
    --no-systemd) SYSTEMD=0; shift ;;
    --skip-setup) SETUP=0; shift ;;
    --unit-root) UNIT_ROOT=$2; SETUP=0; shift 2 ;;
    --store) STORE=$2; shift 2 ;;
    *) echo "provision-node: unknown argument $1" >&2; usage ;;
  esac
done
TOPOLOGY=$(realpath "$TOPOLOGY")
mkdir -p "$STATE_DIR"
STATE_DIR=$(realpath "$STATE_DIR")
[ -n "$SOCKET" ] || SOCKET=$STATE_DIR/flowd.sock
NODE_BIN=$(command -v node || true)

if [ "$SETUP" = 1 ]; then
  bash "$ROOT/scripts/setup.sh"
  NODE_BIN=$(command -v node)
fi
[ -n "$NODE_BIN" ] || { echo "provision-node: node is not installed (run without --skip-setup)" >&2; exit 1; }
[ -f "$ROOT/dist/src/cli/node-setup.js" ] || { echo "provision-node: flowd is not built (run without --skip-setup)" >&2; exit 1; }

SETUP_ARGS=(--node "$NODE" --topology "$TOPOLOGY" --ns-prefix "$NS_PREFIX" --state-dir "$STATE_DIR" --socket "$SOCKET" "${NICS[@]}")
CFG=$STATE_DIR/$NODE.yaml
PID_FILE=$STATE_DIR/$NODE.pid
# flowd's arguments beyond --config and --pid-file (the topology from etcd with --store).
FLOWD_ARGS=()
[ -z "$STORE" ] || FLOWD_ARGS=(--topology "$STORE")

push_to_store() { # the topology file into etcd, retried while etcd is not up yet (5 min)
  local out
  for _ in $(seq 150); do
    if out=$("$NODE_BIN" "$ROOT/dist/src/cli/flowctl.js" topology push "$TOPOLOGY" --etcd "$STORE" 2>&1); then
      echo "provision-node: $out" | head -n 3
      return 0
    fi
    sleep 2
  done
  echo "provision-node: could not push $TOPOLOGY to $STORE: $out" >&2
  return 1
}

wait_for_daemon() { # wait_for_daemon PID|"" : until `flowctl show` answers (30 s)
  for _ in $(seq 300); do
    if "$NODE_BIN" "$ROOT/dist/src/cli/flowctl.js" --socket "$SOCKET" show >/dev/null 2>&1; then
      "$NODE_BIN" "$ROOT/dist/src/cli/flowctl.js" --socket "$SOCKET" show | sed 's/^/provision-node:   /'
      return 0
    fi
    if [ -n "$1" ] && ! kill -0 "$1" 2>/dev/null; then break; fi
    sleep 0.1
  done
  echo "provision-node: flowd of $NODE does not answer on $SOCKET" >&2
  return 1
}

if [ "$SYSTEMD" = 0 ]; then
  if [ -f "$PID_FILE" ]; then
    old=$(cat "$PID_FILE")
    # Only a flowd this script started for this node and state directory.
    if [ -n "$old" ] && grep -qF -- "$CFG" "/proc/$old/cmdline" 2>/dev/null; then
      echo "provision-node: stopping the earlier flowd of $NODE (pid $old)"
      kill -TERM "$old" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$old" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$old" 2>/dev/null && kill -KILL "$old" 2>/dev/null || true
    fi
    rm -f "$PID_FILE"
  fi
  "$NODE_BIN" "$ROOT/dist/src/cli/node-setup.js" up "${SETUP_ARGS[@]}"
  [ -z "$STORE" ] || push_to_store
  LOG=$STATE_DIR/$NODE.log
  setsid "$NODE_BIN" "$ROOT/dist/src/cli/flowd.js" --config "$CFG" --pid-file "$PID_FILE" "${FLOWD_ARGS[@]}" \
    </dev/null >>"$LOG" 2>&1 &
  pid=$!
  wait_for_daemon "$pid" || { tail -n 20 "$LOG" >&2; exit 1; }
  echo "provision-node: flowd of $NODE is up (pid $(cat "$PID_FILE" 2>/dev/null || echo "$pid"), log $LOG)"
  exit 0
fi

# systemd: one instance per node; the per-node arguments live in /etc/flowd/NODE.env.
[ -n "$UNIT_ROOT" ] || command -v systemctl >/dev/null || { echo "provision-node: no systemd here; use --no-systemd" >&2; exit 1; }
mkdir -p "$UNIT_ROOT/etc/flowd" "$UNIT_ROOT/etc/systemd/system"
{
  echo "# written by scripts/provision-node.sh; flowd@$NODE reads it"
  echo "FLOWD_SETUP_ARGS=\"${SETUP_ARGS[*]}\""
  echo "FLOWD_ARGS=\"${FLOWD_ARGS[*]}\""
} >"$UNIT_ROOT/etc/flowd/$NODE.env"
cat >"$UNIT_ROOT/etc/systemd/system/flowd@.service" <<EOF
# written by $ROOT/scripts/provision-node.sh
[Unit]
Description=flowd DVR switch, node %i
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
EnvironmentFile=/etc/flowd/%i.env
ExecStartPre=$NODE_BIN $ROOT/dist/src/cli/node-setup.js up \$FLOWD_SETUP_ARGS
ExecStart=$NODE_BIN $ROOT/dist/src/cli/flowd.js --config $STATE_DIR/%i.yaml --pid-file $STATE_DIR/%i.pid \$FLOWD_ARGS
Restart=on-failure
RestartSec=2

[Install]
WantedBy=multi-user.target
EOF
if [ -n "$UNIT_ROOT" ]; then
  echo "provision-node: wrote $UNIT_ROOT/etc/systemd/system/flowd@.service and $UNIT_ROOT/etc/flowd/$NODE.env"
  exit 0
fi
if [ -n "$STORE" ]; then
  # The underlay address first (the unit's ExecStartPre does it again), then the topology into etcd.
  "$NODE_BIN" "$ROOT/dist/src/cli/node-setup.js" up "${SETUP_ARGS[@]}"
  push_to_store
fi
systemctl daemon-reload
systemctl enable "flowd@$NODE" >/dev/null 2>&1
systemctl restart "flowd@$NODE"
echo "provision-node: systemd unit flowd@$NODE (re)started"
wait_for_daemon "" || { journalctl -u "flowd@$NODE" -n 20 --no-pager >&2 || true; exit 1; }
