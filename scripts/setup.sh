#!/usr/bin/env bash
# Installs whatever flowd needs that is missing, then builds it. Idempotent: a second run
# installs nothing and only rebuilds what changed. Needs root for apt (Debian 12).
#   - Debian packages: build tools, libpcap (for the `cap` package), iproute2, ping,
#     ethtool, tcpdump, tshark (tests decode our frames with it), iperf3, Open vSwitch
#     (the behaviour oracle and the benchmark peer), netsniff-ng (trafgen), dnsmasq-base (DHCP
#     agents), busybox (udhcpc, the lab VMs' DHCP client), etcd-server and etcd-client (the
#     etcd topology source and its tests).
#   - npm packages from package-lock.json (offline addon builds against /usr/include/node).
#   - the native addon (node-gyp) and the TypeScript build (dist/).
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
want() { # want <command-or-path> <debian-package>
  if [[ "$1" == /* ]]; then [ -e "$1" ] || need_pkgs+=("$2")
  else command -v "$1" >/dev/null 2>&1 || need_pkgs+=("$2"); fi
}
want node nodejs
want npm npm
want python3 python3
want make make
want g++ g++
want /usr/include/pcap/pcap.h libpcap-dev
want ip iproute2
want ping iputils-ping
want ethtool ethtool
want keepalived keepalived          # VRRP for HA routers (control/keepalived.ts)
want tcpdump tcpdump
want tshark tshark
want iperf3 iperf3
want ovs-vswitchd openvswitch-switch
want trafgen netsniff-ng
want osken-manager python3-os-ken    # the OpenFlow controller of test/control/openflow/os-ken.test.ts
want /usr/sbin/dnsmasq dnsmasq-base       # Neutron's DHCP server, one per served network (control/dhcp-agent.ts)
want busybox busybox                 # udhcpc: the lab VMs' DHCP client
want etcd etcd-server                # topology/agent store (flowd --topology etcd://, test/control/etcd*)
want etcdctl etcd-client
want vagrant vagrant                 # only `vagrant validate` runs here (test/integration/provision)
want /usr/share/vagrant-plugins/plugins.d/vagrant-libvirt.json vagrant-libvirt
want /usr/include/node/node_api.h libnode-dev

if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing packages ${need_pkgs[*]}; run as root to install them" >&2
    exit 1
  fi
  echo "setup: installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # tshark asks whether non-root users may capture; the answer does not matter here.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${need_pkgs[@]}"
fi

export npm_config_nodedir=${npm_config_nodedir:-/usr}
if [ -L node_modules ]; then
  # A worktree sharing another checkout's packages: npm ci would rewrite them through the link.
  echo "setup: node_modules is a link to $(readlink node_modules); not touching it"
elif [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund
fi
if [ -f binding.gyp ]; then
  if [ ! -f build/Release/flowd_io.node ] || [ -n "$(find src/native binding.gyp -newer build/Release/flowd_io.node -print -quit)" ]; then
    echo "setup: building the native addon"
    bash scripts/build-native.sh
  fi
fi
echo "setup: tsc"
npx tsc -p tsconfig.json
