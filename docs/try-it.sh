#!/usr/bin/env bash
# A first pause: start a counter in a cgroup of its own, pause it with stasis,
# show that it stopped, unpause it, and clean up. Run as root after
# `cargo build --release` (which builds stasis-pause next to stasis).
set -euo pipefail
stasis=${STASIS:-$(dirname "$0")/../target/x86_64-unknown-linux-gnu/release/stasis}
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

# A first pod: a counter in a container, the pod paused and unpaused.
# stasis finds the stasis-pause that `cargo build --release` put next to it.
root=$(mktemp -d /tmp/stasis-try-XXXXXX)
pod_counter=$(mktemp)
s() { "$stasis" --root "$root" "$@"; }
cleanup_pod() {
  s pod rm -f demo >/dev/null 2>&1 || true
  rm -rf "$root" "$pod_counter"
}
trap 'cleanup_pod; cleanup' EXIT
echo
echo "+ stasis pod create --name demo"
s pod create --name demo
echo "+ stasis run -d --pod demo --name counter -- sh -c '...count...'"
s run -d --pod demo --name counter -- sh -c 'i=0; while :; do i=$((i+1)); printf "%012d\n" $i 1<>"$1"; done' sh "$pod_counter"
sleep 0.3
echo "+ stasis pod pause demo"
s pod pause demo
s ps
a=$(cat "$pod_counter"); sleep 0.5; b=$(cat "$pod_counter")
echo "counter while the pod is paused: $a -> $b"
echo "+ stasis pod unpause demo"
s pod unpause demo
a=$(cat "$pod_counter"); sleep 0.5; b=$(cat "$pod_counter")
echo "counter after unpause: $a -> $b"
echo "+ stasis pod rm -f demo"
s pod rm -f demo
