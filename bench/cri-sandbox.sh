#!/usr/bin/env bash
# The sandbox image benchmark (issue 12): a pod sandbox's start through
# containerd's CRI plugin (RunPodSandbox, then PodSandboxStatus until READY,
# as the kubelet waits for it) with stasis-pause as the sandbox image, side
# by side with an image of a C pause of Kubernetes' kind (bench/pause.c,
# static glibc) packed the same way (`stasis sandbox-image --pause`), and the
# resident memory of COUNT sandboxes of each at once (VmRSS and Pss of the
# sandboxes' processes, and of their shims for scale).
#
#   sudo bash bench/cri-sandbox.sh
#
# Settings (environment): ROUNDS=30 (timed starts per image, interleaved),
# COUNT=100 (sandboxes at once per image).
#
# Needs root, cargo, gcc with the static glibc (libc6-dev), protoc
# (protobuf-compiler, for the CRI client's build) and containerd (Debian's
# containerd, 1.6), which it checks for but does not install. Each image gets
# a private containerd (root, state, sockets in a directory of its own, its
# cgroups below /stasis-test-<random>); the driver
# (crates/testkit/examples/cri-sandbox.rs) removes them, and the EXIT trap
# removes the work directory.
set -euo pipefail

die() { echo "cri-sandbox.sh: $*" >&2; exit 1; }
[[ $EUID -eq 0 ]] || die "run as root"
for tool in cargo gcc protoc containerd ctr containerd-shim-runc-v2 runc; do
    command -v "$tool" >/dev/null || die "$tool not found (apt-get install -y gcc libc6-dev protobuf-compiler containerd)"
done

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
ROUNDS=${ROUNDS:-30}
COUNT=${COUNT:-100}
work=$(mktemp -d /tmp/stasis-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT

cd "$REPO"
cargo build --quiet -p stasis
cargo build --quiet -p stasis-pause --profile pause
cargo build --quiet -p testkit --features containerd --example cri-sandbox
triple=x86_64-unknown-linux-gnu
bin() {  # profile name: the built binary (with or without a configured target)
    local p
    for p in "$TARGET_DIR/$triple/$1/$2" "$TARGET_DIR/$1/$2"; do
        [[ -x $p ]] && { echo "$p"; return; }
    done
    die "no $1 build of $2 under $TARGET_DIR"
}
stasis=$(bin debug stasis)
stasis_pause=$(bin pause stasis-pause)
driver=$(bin debug/examples cri-sandbox)

gcc -static -O2 -s -o "$work/pause" bench/pause.c
"$stasis" sandbox-image -o "$work/stasis-pause.tar" --pause "$stasis_pause" --name localhost/stasis-pause:bench
"$stasis" sandbox-image -o "$work/c-pause.tar" --pause "$work/pause" --name localhost/c-pause-glibc-static:bench

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| sandbox image | pause binary | RunPodSandbox → ready, median of $ROUNDS (p10–p90) | VmRSS of $COUNT sandboxes | Pss of $COUNT sandboxes | Pss of their shims |"
echo "|---|---:|---:|---:|---:|---:|"
# Other heavy kernel tests on the machine take turns with it.
flock /tmp/stasis-tests.lock "$driver" "$ROUNDS" "$COUNT" \
    "localhost/stasis-pause:bench=$work/stasis-pause.tar=$stasis_pause" \
    "localhost/c-pause-glibc-static:bench=$work/c-pause.tar=$work/pause"
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
