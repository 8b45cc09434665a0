#!/bin/bash
# Builds the native I/O addon (src/native/*.c -> build/Release/flowd_io.node) with node-gyp,
# offline: the Node headers come from the system (/usr/include/node), nothing is downloaded.
# Usage: scripts/build-native.sh   (from anywhere; needs gcc and make)
set -euo pipefail
cd "$(dirname "$0")/.."
GYP=""
for c in /usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js \
         /usr/share/nodejs/node-gyp/bin/node-gyp.js \
         "$(dirname "$(readlink -f "$(command -v node)")")/../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"; do
  if [ -f "$c" ]; then GYP=$c; break; fi
done
if [ -z "$GYP" ]; then
  echo "build-native: node-gyp not found (it ships with npm); install npm" >&2
  exit 1
fi
NODEDIR=${npm_config_nodedir:-/usr}
if [ ! -f "$NODEDIR/include/node/node_api.h" ]; then
  echo "build-native: no Node headers in $NODEDIR/include/node; set npm_config_nodedir" >&2
  exit 1
fi
npm_config_nodedir=$NODEDIR node "$GYP" rebuild --nodedir="$NODEDIR" ${BUILD_NATIVE_ARGS:-}
