#!/usr/bin/env bash
# flowd's main job. Installs what is missing (scripts/setup.sh), builds, then:
#   lab.sh [demo]    replay the shipped captures of examples/demo/ through the shipped bridge
#                    config and print what came out on which port
set -euo pipefail
cd "$(dirname "$0")/.."
cmd=${1:-demo}
bash scripts/setup.sh >&2
case "$cmd" in
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
    echo "usage: $0 [demo]" >&2
    exit 2
    ;;
esac
