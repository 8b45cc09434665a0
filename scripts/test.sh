#!/usr/bin/env bash
# The test command of the README and of CI: installs what is missing, builds, runs every test
# with Node's test runner. Extra arguments filter test files by substring.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node scripts/run-tests.js "$@"
