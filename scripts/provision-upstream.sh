#!/usr/bin/env bash
# Makes this machine the upstream host of a DVR topology's external network (the upstream
# router of dvr-reference.md: 203.0.113.1, MAC 52:54:00:ff:00:01 in the reference), as the
# namespace lab's fl-up namespace is: the NIC with that MAC gets the address, nothing else.
#
#   provision-upstream.sh --address CIDR --mac MAC [--name DEV] [--skip-install]
#
# The Vagrantfile reads CIDR (the external subnet's gateway_ip/prefix) and MAC (its
# gateway_mac) from the same topology file the nodes use, and gives this VM's external NIC that
# MAC. --name renames the NIC (default: keep the name the kernel gave it). Installs ping,
# tcpdump and iperf3 when missing (skipped with --skip-install). Needs root. Idempotent.
set -euo pipefail
ADDRESS=""; MAC=""; NAME=""; INSTALL=1
while [ $# -gt 0 ]; do
  case "$1" in
    --address) ADDRESS=$2; shift 2 ;;
    --mac) MAC=$(echo "$2" | tr 'A-F' 'a-f'); shift 2 ;;
    --name) NAME=$2; shift 2 ;;
    --skip-install) INSTALL=0; shift ;;
    *) echo "provision-upstream: unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ -z "$ADDRESS" ] || [ -z "$MAC" ]; then
  echo "usage: $0 --address CIDR --mac MAC [--name DEV] [--skip-install]" >&2
  exit 2
fi

if [ "$INSTALL" = 1 ]; then
  need=()
  command -v ping >/dev/null || need+=(iputils-ping)
  command -v tcpdump >/dev/null || need+=(tcpdump)
  command -v iperf3 >/dev/null || need+=(iperf3)
  if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${need[@]}"
  fi
fi

# `ip -o link` lines: "2: eth1: <...> ... link/ether 52:54:00:ff:00:01 brd ..." (netlink, so
# this also works under `nsenter --net`, where /sys shows another namespace).
dev=$(ip -o link | awk -v mac="$MAC" '{ for (i = 1; i < NF; i++) if ($i == "link/ether" && $(i + 1) == mac) { sub(/:$/, "", $2); sub(/@.*/, "", $2); print $2; exit } }')
if [ -z "$dev" ]; then
  echo "provision-upstream: no interface has MAC $MAC; present:" >&2
  ip -br link >&2
  exit 1
fi
if [ -n "$NAME" ] && [ "$dev" != "$NAME" ]; then
  ip link set "$dev" down
  ip link set "$dev" name "$NAME"
  dev=$NAME
fi
# No IPv6 autoconfiguration chatter on the external wire (the lab's upstream has none either).
sysctl -qw "net.ipv6.conf.$dev.disable_ipv6=1" || true
if ! ip -4 -o addr show dev "$dev" | grep -qF " $ADDRESS "; then
  ip addr flush dev "$dev"
  ip addr add "$ADDRESS" dev "$dev"
fi
ip link set "$dev" up
echo "provision-upstream: $dev $MAC $ADDRESS"
