#!/usr/bin/env bash
# Side-by-side benchmark of pod pause processes / minimal inits, each run as
# PID 1 of its own PID namespace: size on disk, idle memory (VmRSS and Pss), and
# the time to reap a burst of orphans (median of RUNS rounds, interleaved).
#
# Run as root from anywhere in the repository:   bench/pause.sh
# Knobs (environment): RUNS (default 15), ORPHANS (default 10000).
#
# Needs these Debian packages (it installs nothing itself):
#   tini (tini, tini-static), catatonit, dumb-init, util-linux (unshare),
#   coreutils, binutils (readelf), gcc (bench/pause-reap.c and cargo's linker),
#   plus a Rust toolchain (cargo) to build stasis-pause.
set -euo pipefail

RUNS=${RUNS:-15}
ORPHANS=${ORPHANS:-10000}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)

declare -A init_pid=() unshare_pid=()
cleanup() {
    local name
    for name in "${!unshare_pid[@]}"; do
        # SIGKILL from the parent namespace always ends a namespace's init;
        # unshare then reaps it and exits. Killing unshare first would leave
        # the init a zombie of the host's PID 1.
        if [[ -n ${init_pid[$name]:-} ]]; then
            kill -KILL "${init_pid[$name]}" 2>/dev/null || true
        else
            kill -KILL "${unshare_pid[$name]}" 2>/dev/null || true
        fi
        wait "${unshare_pid[$name]}" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

[[ $(id -u) == 0 ]] || { echo "bench/pause.sh: needs root (PID namespaces)" >&2; exit 1; }

(cd "$root" && cargo build --quiet -p stasis-pause --profile pause)
stasis_pause="${CARGO_TARGET_DIR:-$root/target}/x86_64-unknown-linux-gnu/pause/stasis-pause"
gcc -O2 -o "$work/pause-reap" "$root/bench/pause-reap.c"

# name | binary | arguments (the inits that need a child get a long sleep)
inits=(
    "stasis-pause|$stasis_pause|"
    "tini|/usr/bin/tini|-- sleep 1000000"
    "tini-static|/usr/bin/tini-static|-- sleep 1000000"
    "catatonit|/usr/libexec/podman/catatonit|-P"
    "dumb-init|/usr/bin/dumb-init|sleep 1000000"
)
names=()

start() {  # name binary args...
    local name=$1; shift
    unshare --pid --fork --kill-child -- "$@" </dev/null >/dev/null 2>&1 &
    unshare_pid[$name]=$!
    local child="" i
    for ((i = 0; i < 500; i++)); do
        child=$(cat "/proc/${unshare_pid[$name]}/task/${unshare_pid[$name]}/children" 2>/dev/null || true)
        child=${child%% *}
        [[ -n $child && $(readlink "/proc/$child/exe" 2>/dev/null) == "$(readlink -f "$1")" ]] && break
        sleep 0.01
    done
    [[ -n $child ]] || { echo "$name did not start" >&2; exit 1; }
    init_pid[$name]=$child
}

median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

for entry in "${inits[@]}"; do
    IFS='|' read -r name bin args <<<"$entry"
    [[ -x $bin ]] || { echo "missing $bin (see the package list at the top)" >&2; exit 1; }
    # shellcheck disable=SC2086 # the arguments are words
    start "$name" "$bin" $args
    names+=("$name")
done
sleep 1  # let every init reach its idle wait

declare -A rss=() pss=()
for name in "${names[@]}"; do
    rss[$name]=$(awk '/^VmRSS:/ {print $2}' "/proc/${init_pid[$name]}/status")
    pss[$name]=$(awk '/^Pss:/ {print $2}' "/proc/${init_pid[$name]}/smaps_rollup")
done

declare -A times=()
for ((r = 0; r < RUNS; r++)); do
    for name in "${names[@]}"; do
        times[$name]+="$("$work/pause-reap" "${init_pid[$name]}" "$ORPHANS") "
    done
done

printf '| %s | %s | %s | %s | %s | %s |\n' init "size on disk" linked "VmRSS idle" "Pss idle" \
    "reap $ORPHANS orphans (median of $RUNS)"
printf '|---|---:|---|---:|---:|---:|\n'
for entry in "${inits[@]}"; do
    IFS='|' read -r name bin _ <<<"$entry"
    size=$(stat -L -c %s "$bin")
    if readelf -lW "$bin" | grep -q INTERP; then linked=dynamic; else linked=static; fi
    reap=$(tr ' ' '\n' <<<"${times[$name]}" | grep . | median)
    printf '| %s | %d B | %s | %d KiB | %d KiB | %.1f ms |\n' "$name" "$size" "$linked" "${rss[$name]}" "${pss[$name]}" \
        "$(awk -v us="$reap" 'BEGIN {print us / 1000}')"
done
