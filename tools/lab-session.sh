# Sourced by the tools that drive the flowd lab for a measurement (lab-perf.sh, lab-loss.sh,
# lab-reorder.sh): a private lab state directory, the lab taken down on exit, failure or a
# signal, and a wait while another lab holds the fixed fl- names. A tool sets TREE and OUT,
# may define lab_stop_extra (run first on exit: its own children), then calls
#   lab_begin TAG     the state directory /tmp/flowd-lab-TAG.XXXXXX, the traps, cd "$TREE", the wait
#   lab_up            `lab.js up` (output in $OUT/lab-up.log); exits 1 when it fails
# A tool may prefix lab_up with environment for the daemons (NODE_OPTIONS=... lab_up).
lab_stop_extra() { :; }
lab_cleanup() {
  lab_stop_extra
  (cd "$TREE" && node dist/src/cli/lab.js down >/dev/null 2>&1)
  rm -rf "$FLOWD_LAB_DIR"
}
lab_begin() {
  mkdir -p "$OUT"
  OUT=$(cd "$OUT" && pwd)
  FLOWD_LAB_DIR=$(mktemp -d "/tmp/flowd-lab-$1.XXXXXX")
  export FLOWD_LAB_DIR
  trap lab_cleanup EXIT
  trap 'exit 130' INT TERM
  cd "$TREE" || exit 1
  # The lab's names are fixed: wait (up to 2 min) until no other lab holds them.
  for _ in $(seq 60); do ip netns list | grep -q '^fl-' || break; sleep 2; done
}
lab_up() {
  node dist/src/cli/lab.js up > "$OUT/lab-up.log" 2>&1 || { echo "lab up failed (see $OUT/lab-up.log)"; exit 1; }
}
