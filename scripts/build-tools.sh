#!/bin/bash
# Builds the project's small C tools (tools/*.c -> build/tools/NAME) with gcc, libc only.
# Usage: scripts/build-tools.sh   (from anywhere). Used by scripts/bench-io.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p build/tools
for c in tools/*.c; do
  n=$(basename "$c" .c)
  if [ ! -x "build/tools/$n" ] || [ "$c" -nt "build/tools/$n" ]; then
    gcc -O2 -Wall -Wextra -o "build/tools/$n" "$c"
  fi
done
