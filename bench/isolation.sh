#!/usr/bin/env bash
# The isolation benchmark (issue 11): what `stasis run -d` costs with a
# container's isolation on (its own PID namespace, docker's capabilities, a
# seccomp program, device rules), against the same command with capabilities,
# seccomp and devices left open (`--privileged --security-opt
# seccomp=unconfined`: the PID namespace stays), and against a stasis built
# before isolation existed (BEFORE=PATH: a container in the host's PID
# namespace, unconfined). And the memory of a running container (its monitor's
# and its process's Pss) either way.
#
#   sudo BEFORE=/path/to/old/stasis bash bench/isolation.sh
#
# And against `podman run -d --rootfs` of the same root filesystem (podman of
# the benchmark's own: bench/podman-env.sh; runc, cgroupfs, --network none),
# whose container is confined the same way by default (PID namespace,
# capabilities, seccomp, devices).
#
# Needs root, cargo, hyperfine, jq, podman, runc and busybox-static (checked,
# not installed).
#
# Settings: RUNS=100 WARMUP=10, CONTAINERS=20 (for the memory figure),
# RESULTS=DIR (default: a new /tmp/stasis-bench-results.XXXXXX, kept).
#
# Everything it creates (a private --root with its pods, containers, cgroups
# and pins; a busybox root filesystem) is removed by the EXIT trap.

set -euo pipefail

die() { echo "isolation.sh: $*" >&2; exit 1; }
log() { echo "isolation.sh: $*" >&2; }

[[ $EUID -eq 0 ]] || die "run as root"
for tool in cargo hyperfine busybox awk jq podman runc; do
    command -v "$tool" >/dev/null || die "$tool not found"
done

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
RUNS=${RUNS:-100}
WARMUP=${WARMUP:-10}
CONTAINERS=${CONTAINERS:-20}
RESULTS=${RESULTS:-$(mktemp -d /tmp/stasis-bench-results.XXXXXX)}
mkdir -p "$RESULTS"

log "building (release stasis, pause-profile stasis-pause)"
(cd "$REPO" && cargo build --release -p stasis && cargo build -p stasis-pause --profile pause) >&2
S=$TARGET_DIR/x86_64-unknown-linux-gnu/release/stasis
export STASIS_PAUSE=$TARGET_DIR/x86_64-unknown-linux-gnu/pause/stasis-pause
[[ -x $S && -x $STASIS_PAUSE ]] || die "built artifacts not found"

R=$(mktemp -d /tmp/stasis-bench-XXXXXX)
ROOTFS=$(mktemp -d /tmp/stasis-bench-rootfs-XXXXXX)
# podman of our own: $PM, podman_cleanup, podman_unmount
. "$REPO/bench/podman-env.sh"
cleanup() {
    for bin in "$S" ${BEFORE:+"$BEFORE"}; do
        for pod in $("$bin" --root "$R" pod ls -q 2>/dev/null); do
            "$bin" --root "$R" pod rm -f "$pod" >/dev/null 2>&1 || true
        done
    done
    podman_cleanup
    podman_unmount
    rm -rf "$R" "$ROOTFS" "$PM"
}
trap cleanup EXIT

mkdir -p "$ROOTFS/bin"
cp /bin/busybox "$ROOTFS/bin/busybox"
ln -s busybox "$ROOTFS/bin/sleep"

# One container named `b` at a time: each run starts it, the next run's
# prepare removes it (not timed).
# (hyperfine -N runs commands without a shell; the prepare needs one.)
prep() { echo "sh -c '$1 --root $R rm -f b >/dev/null 2>&1; true'"; }
cmds=(
    -n isolated --prepare "$(prep "$S")" "$S --root $R run -d --name b --rootfs $ROOTFS -- /bin/sleep 1000"
    -n open --prepare "$(prep "$S")" "$S --root $R run -d --name b --privileged --security-opt seccomp=unconfined --rootfs $ROOTFS -- /bin/sleep 1000"
)
cmds+=(-n "podman run -d" --prepare "sh -c 'podman rm -f -t 0 b >/dev/null 2>&1; true'"
    "podman run -d --name b --network none --rootfs $ROOTFS /bin/sleep 1000")
if [[ -n ${BEFORE:-} ]]; then
    cmds+=(-n before --prepare "$(prep "$BEFORE")" "$BEFORE --root $R run -d --name b --rootfs $ROOTFS -- /bin/sleep 1000")
fi
log "timing run -d ($RUNS runs each; load $(cut -d' ' -f1 /proc/loadavg))"
hyperfine -N --runs "$RUNS" --warmup "$WARMUP" --export-json "$RESULTS/run-d.json" \
    --export-markdown "$RESULTS/run-d.md" "${cmds[@]}" >&2
"$S" --root "$R" rm -f b >/dev/null 2>&1 || true
podman rm -f -t 0 b >/dev/null 2>&1 || true

# Pss of each container's monitor and process, averaged over CONTAINERS.
pss() { awk '/^Pss:/ {s += $2} END {print s + 0}' "/proc/$1/smaps_rollup"; }
memory() {
    local label=$1; shift
    local total_mon=0 total_proc=0 n
    for n in $(seq "$CONTAINERS"); do
        "$S" --root "$R" run -d --name "m$n" "$@" --rootfs "$ROOTFS" -- /bin/sleep 1000 >/dev/null
    done
    for n in $(seq "$CONTAINERS"); do
        local mon proc
        mon=$("$S" --root "$R" inspect "m$n" | jq -r '.[0].monitor.pid')
        proc=$("$S" --root "$R" inspect "m$n" | jq -r '.[0].process.pid')
        total_mon=$((total_mon + $(pss "$mon")))
        total_proc=$((total_proc + $(pss "$proc")))
    done
    echo "| $label | $((total_mon / CONTAINERS)) KiB | $((total_proc / CONTAINERS)) KiB |"
    for n in $(seq "$CONTAINERS"); do "$S" --root "$R" rm -f "m$n" >/dev/null; done
}
# The same for podman: its monitor is conmon.
podman_memory() {
    local total_mon=0 total_proc=0 n mon proc
    for n in $(seq "$CONTAINERS"); do
        podman run -d --name "m$n" --network none --rootfs "$ROOTFS" /bin/sleep 1000 >/dev/null
    done
    for n in $(seq "$CONTAINERS"); do
        mon=$(podman inspect -f '{{.State.ConmonPid}}' "m$n")
        proc=$(podman inspect -f '{{.State.Pid}}' "m$n")
        total_mon=$((total_mon + $(pss "$mon")))
        total_proc=$((total_proc + $(pss "$proc")))
    done
    echo "| podman (conmon) | $((total_mon / CONTAINERS)) KiB | $((total_proc / CONTAINERS)) KiB |"
    podman_cleanup
}
{
    echo "| containers ($CONTAINERS) | monitor Pss | process Pss |"
    echo "|---|---:|---:|"
    memory isolated
    memory open --privileged --security-opt seccomp=unconfined
    podman_memory
} | tee "$RESULTS/memory.md"
cat "$RESULTS/run-d.md"
log "results in $RESULTS"
