#!/usr/bin/env bash
# Lease expiry to thaw (issue 9): how long after a lease's recorded expiry
# the watchdog has the target thawed. Each round pauses a cgroup with
# `stasis pause --lease LEASE --cgroup DIR`, reads the expiry the lease record
# holds (wall-clock seconds and nanoseconds), then polls the kernel's own word
# (v1 freezer.state THAWED, v2 "frozen 0" in cgroup.events) and takes the
# wall-clock time at the first thawed reading. Goal: <= 50 ms.
#
# And the death of an --until-exit controller to thaw: each round starts a
# controller (a sleep), pauses the cgroup with `--until-exit` its PID, takes
# the time, SIGKILLs the controller and polls the same word. Goal: <= 100 ms.
#
#   sudo bash bench/lease.sh
#
# Needs root, the v1 freezer at /sys/fs/cgroup/freezer and/or cgroup2 at
# /sys/fs/cgroup/unified, bash 5 ($EPOCHREALTIME), cargo. Not run by CI.
#
# Settings (environment):
#   ROUNDS=100     rounds per hierarchy
#   LEASE=300ms    the lease of each round
#   STASIS=PATH    the binary (default: a release build, made if missing)
#
# The poll is a busy loop of bash builtins (no fork per reading), so a
# figure includes up to one reading's latency (a few microseconds) and, on a
# busy 2-core machine, any time the watchdog waited for a CPU: run it on a
# quiet machine. Everything it creates (cgroups stasis-bench-<random>, their
# sleep process, a private state root) is removed by the EXIT trap; processes
# are killed only by the PIDs listed in those cgroups.

set -euo pipefail

die() { echo "lease.sh: $*" >&2; exit 1; }
[[ $EUID -eq 0 ]] || die "needs root"
[[ -n ${EPOCHREALTIME:-} ]] || die "needs bash 5 (\$EPOCHREALTIME)"

ROUNDS=${ROUNDS:-100}
LEASE=${LEASE:-300ms}
repo=$(cd "$(dirname "$0")/.." && pwd)
if [[ -z ${STASIS:-} ]]; then
  target=${CARGO_TARGET_DIR:-$repo/target}
  STASIS=$target/x86_64-unknown-linux-gnu/release/stasis
  [[ -x $STASIS ]] || (cd "$repo" && cargo build --release -p stasis >&2)
fi
[[ -x $STASIS ]] || die "no stasis binary at $STASIS"

tag=stasis-bench-$RANDOM$RANDOM
root=$(mktemp -d /tmp/$tag-root.XXXXXX)
cgroups=()

cleanup() {
  for dir in "${cgroups[@]}"; do
    [[ -d $dir ]] || continue
    if [[ -f $dir/freezer.state ]]; then echo THAWED > "$dir/freezer.state" || true; fi
    if [[ -f $dir/cgroup.freeze ]]; then echo 0 > "$dir/cgroup.freeze" || true; fi
    while read -r pid; do kill -KILL "$pid" 2>/dev/null || true; done < "$dir/cgroup.procs"
    for _ in $(seq 100); do rmdir "$dir" 2>/dev/null && break; sleep 0.02; done
  done
  # Watchdogs end with their leases; a lease still running ends by unpause.
  rm -rf "$root"
}
trap cleanup EXIT

thawed() { # version dir
  local k v
  if [[ $1 == v1 ]]; then
    read -r v < "$2/freezer.state"; [[ $v == THAWED ]]
  else
    while read -r k v; do [[ $k == frozen ]] && { [[ $v == 0 ]]; return; }; done < "$2/cgroup.events"
    return 1
  fi
}

summary() { # label
  sort -n | awk -v label="$1" -v n="$ROUNDS" '
    { a[NR] = $1 }
    END {
      med = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
      p95 = a[int(0.95 * NR + 0.999999)]
      printf "%s over %d rounds: median %.2f ms, p95 %.2f ms, min %.2f ms, max %.2f ms\n",
        label, n, med / 1000, p95 / 1000, a[1] / 1000, a[NR] / 1000
    }'
}

measure() { # version mount
  local version=$1 mount=$2 dir=$2/$tag-$1 out=() record rest secs nanos now
  [[ -d $mount ]] || { echo "$version: no hierarchy at $mount, skipped" >&2; return; }
  mkdir "$dir"; cgroups+=("$dir")
  sh -c 'echo $$ > "$0/cgroup.procs" && exec sleep 100000' "$dir" </dev/null >/dev/null 2>&1 &
  disown $!
  until read -r _ < "$dir/cgroup.procs"; do :; done
  for ((i = 0; i < ROUNDS; i++)); do
    "$STASIS" --root "$root" pause --lease "$LEASE" --cgroup "$dir"
    record=$(< "$root"/leases/*.json)
    rest=${record#*\"expires\":\{\"secs\":}; secs=${rest%%,*}
    rest=${rest#*\"nanos\":}; nanos=${rest%%\}*}
    until thawed "$version" "$dir"; do :; done
    now=$EPOCHREALTIME
    # microseconds from the expiry to the first thawed reading
    out+=($(( (${now%.*} - secs) * 1000000 + 10#${now#*.} - nanos / 1000 )))
    # the watchdog removes the record just after the thaw
    while compgen -G "$root/leases/*.json" >/dev/null; do :; done
  done
  printf '%s\n' "${out[@]}" | summary "$version: lease expiry to thaw"
}

measure_until_exit() { # version mount
  local version=$1 mount=$2 dir=$2/$tag-$1-until out=() controller t0 now
  [[ -d $mount ]] || { echo "$version: no hierarchy at $mount, skipped" >&2; return; }
  mkdir "$dir"; cgroups+=("$dir")
  sh -c 'echo $$ > "$0/cgroup.procs" && exec sleep 100000' "$dir" </dev/null >/dev/null 2>&1 &
  disown $!
  until read -r _ < "$dir/cgroup.procs"; do :; done
  for ((i = 0; i < ROUNDS; i++)); do
    sleep 100000 </dev/null >/dev/null 2>&1 &
    controller=$!
    disown "$controller" # bash reaps it without a "Killed" line
    "$STASIS" --root "$root" pause --until-exit "$controller" --cgroup "$dir"
    t0=$EPOCHREALTIME
    kill -KILL "$controller"
    until thawed "$version" "$dir"; do :; done
    now=$EPOCHREALTIME
    out+=($(( (${now%.*} - ${t0%.*}) * 1000000 + 10#${now#*.} - 10#${t0#*.} )))
    while compgen -G "$root/leases/*.json" >/dev/null; do :; done
  done
  printf '%s\n' "${out[@]}" | summary "$version: --until-exit controller killed to thaw"
}

echo "stasis $("$STASIS" --version | awk '{print $2}'), lease $LEASE, $ROUNDS rounds per hierarchy"
measure v1 /sys/fs/cgroup/freezer
measure v2 /sys/fs/cgroup/unified
measure_until_exit v1 /sys/fs/cgroup/freezer
measure_until_exit v2 /sys/fs/cgroup/unified
