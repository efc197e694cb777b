#!/usr/bin/env bash
# A first pause: start a counter in a cgroup of its own, pause it with stasis,
# show that it stopped, unpause it, and clean up. Run as root after
# `cargo build --release`.
set -euo pipefail
stasis=${STASIS:-$(dirname "$0")/../target/release/stasis}
cg=/sys/fs/cgroup/freezer/stasis-demo-$$
[ -d /sys/fs/cgroup/freezer ] || cg=/sys/fs/cgroup/unified/stasis-demo-$$
[ -d "${cg%/*}" ] || cg=/sys/fs/cgroup/stasis-demo-$$
counter=$(mktemp)
mkdir "$cg"
sh -c 'echo $$ > "$1/cgroup.procs"; i=0; while :; do i=$((i+1)); printf "%012d\\n" $i 1<>"$2"; done' sh "$cg" "$counter" &
pid=$!
cleanup() {
  "$stasis" unpause --cgroup "$cg" 2>/dev/null || true
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rmdir "$cg" 2>/dev/null || true
  rm -f "$counter"
}
trap cleanup EXIT
sleep 0.2

echo "+ stasis pause --pid $pid"
"$stasis" pause --pid "$pid"
"$stasis" state --pid "$pid"
a=$(cat "$counter"); sleep 0.5; b=$(cat "$counter")
echo "counter while paused: $a -> $b"
echo "+ stasis unpause --pid $pid"
"$stasis" unpause --pid "$pid"
a=$(cat "$counter"); sleep 0.5; b=$(cat "$counter")
echo "counter after unpause: $a -> $b"
