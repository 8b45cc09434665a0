#!/usr/bin/env bash
# Makes this machine the etcd of a Vagrant DVR lab whose nodes read the topology from etcd
# (FLOWD_STORE=etcd vagrant up; docs/etcd.md, docs/vagrant.md): Debian's etcd, one member,
# on the underlay, as the namespace lab's fl-etcd1 is (src/lab/lab-etcd.ts).
#
#   provision-etcd.sh --address CIDR --mac MAC [--name NAME] [--skip-install]
#
# The NIC with MAC gets CIDR (the Vagrantfile picks the first free address from .250 down in
# the nodes' underlay /24, as the namespace lab does); etcd-server and etcd-client are
# installed when missing (skipped with --skip-install); /etc/default/etcd is written for one
# member NAME (default etcd1) listening on CIDR's address and loopback, port 2379 (peers 2380),
# with --max-txn-ops 8192 so `flowctl topology push` of a large topology fits one transaction;
# the etcd service is (re)started and the script waits until the member answers (60 s).
# The nodes push the topology file themselves (provision-node.sh --store). Needs root and
# systemd. Idempotent; the data dir (/var/lib/etcd/flowd) survives a re-run.
set -euo pipefail
ADDRESS=""; MAC=""; NAME=etcd1; INSTALL=1
while [ $# -gt 0 ]; do
  case "$1" in
    --address) ADDRESS=$2; shift 2 ;;
    --mac) MAC=$(echo "$2" | tr 'A-F' 'a-f'); shift 2 ;;
    --name) NAME=$2; shift 2 ;;
    --skip-install) INSTALL=0; shift ;;
    *) echo "provision-etcd: unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ -z "$ADDRESS" ] || [ -z "$MAC" ]; then
  echo "usage: $0 --address CIDR --mac MAC [--name NAME] [--skip-install]" >&2
  exit 2
fi
IP=${ADDRESS%/*}

if [ "$INSTALL" = 1 ] && ! command -v etcd >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends etcd-server etcd-client
fi

# The NIC by MAC, from netlink (`ip -o link`), as provision-upstream.sh finds its NIC.
dev=$(ip -o link | awk -v mac="$MAC" '{ for (i = 1; i < NF; i++) if ($i == "link/ether" && $(i + 1) == mac) { sub(/:$/, "", $2); sub(/@.*/, "", $2); print $2; exit } }')
if [ -z "$dev" ]; then
  echo "provision-etcd: no interface has MAC $MAC; present:" >&2
  ip -br link >&2
  exit 1
fi
if ! ip -4 -o addr show dev "$dev" | grep -qF " $ADDRESS "; then
  ip addr flush dev "$dev"
  ip addr add "$ADDRESS" dev "$dev"
fi
ip link set "$dev" up

# Debian's etcd.service reads /etc/default/etcd (ETCD_* variables are etcd's flags).
cat >/etc/default/etcd <<EOF
# written by scripts/provision-etcd.sh: one etcd member for the flowd Vagrant lab
ETCD_NAME=$NAME
ETCD_DATA_DIR=/var/lib/etcd/flowd
ETCD_LISTEN_CLIENT_URLS=http://$IP:2379,http://127.0.0.1:2379
ETCD_ADVERTISE_CLIENT_URLS=http://$IP:2379
ETCD_LISTEN_PEER_URLS=http://$IP:2380
ETCD_INITIAL_ADVERTISE_PEER_URLS=http://$IP:2380
ETCD_INITIAL_CLUSTER=$NAME=http://$IP:2380
ETCD_INITIAL_CLUSTER_STATE=new
ETCD_INITIAL_CLUSTER_TOKEN=flowd-vagrant
ETCD_MAX_TXN_OPS=8192
EOF
systemctl enable etcd >/dev/null 2>&1 || true
systemctl restart etcd
for _ in $(seq 60); do
  if ETCDCTL_API=3 etcdctl --endpoints "http://$IP:2379" endpoint health >/dev/null 2>&1; then
    echo "provision-etcd: $NAME up on $dev $MAC, client URL http://$IP:2379"
    exit 0
  fi
  sleep 1
done
echo "provision-etcd: etcd does not answer on http://$IP:2379" >&2
journalctl -u etcd -n 20 --no-pager >&2 || true
exit 1
