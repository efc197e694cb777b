#!/usr/bin/env bash
# Checkpoint and restore with CRIU: stasis against runc, the same workload
# (bench/resident.c, static, in one busybox root filesystem) at 10 MB and
# 200 MB resident, in one run. For each: the time of `checkpoint` (the
# container ends) and of `restore` (until the command returns with the
# container running), and the size of the images. Medians of RUNS rounds,
# stasis and runc interleaved; the images go to a directory under /run
# for both (a tmpfs on most hosts).
#
# Run as root from anywhere in the repository:   bench/checkpoint.sh
# Knobs (environment): RUNS (default 5), SIZES (default "10 200"),
# PROFILE (cargo's: release, the default, or dev; CRIU's work dominates).
#
# Needs: CRIU 4.1 (scripts/install-criu.sh), runc, busybox-static, gcc
# (static glibc), and a Rust toolchain to build stasis.
set -euo pipefail

RUNS=${RUNS:-5}
PROFILE=${PROFILE:-release}
SIZES=${SIZES:-10 200}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /run/stasis-bench-ckpt-XXXXXX)
name=stasis-bench-ckpt-$$

stasis=""
cleanup() {
    [[ -n $stasis ]] && "$stasis" --root "$work/state" rm -f "$name" >/dev/null 2>&1 || true
    runc --root "$work/runc" delete -f "$name" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

[[ $(id -u) == 0 ]] || { echo "bench/checkpoint.sh: needs root" >&2; exit 1; }
command -v criu >/dev/null || [[ -x /usr/local/sbin/criu ]] \
    || { echo "bench/checkpoint.sh: no criu (scripts/install-criu.sh)" >&2; exit 1; }

(cd "$root" && cargo build --quiet --profile "$PROFILE" -p stasis \
    && cargo build --quiet -p stasis-pause --profile pause)
target="${CARGO_TARGET_DIR:-$root/target}/x86_64-unknown-linux-gnu"
if [[ $PROFILE == dev ]]; then stasis="$target/debug/stasis"; else stasis="$target/$PROFILE/stasis"; fi
export STASIS_PAUSE="$target/pause/stasis-pause"

rootfs=$work/bundle/rootfs
mkdir -p "$rootfs/bin" "$work/runc"
cp /bin/busybox "$rootfs/bin/busybox"
for a in sh sleep cat; do ln -s busybox "$rootfs/bin/$a"; done
gcc -O2 -static -o "$rootfs/bin/resident" "$root/bench/resident.c"
(cd "$work/bundle" && runc spec)
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/resident", "0"]
c["root"]["readonly"] = False
json.dump(c, open(p, "w"), indent=1)
PY

now() { date +%s%N; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 1e6 }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
wait_resident() {  # pid mb: until the process is that big (bounded)
    local i rss
    for ((i = 0; i < 600; i++)); do
        rss=$(awk '/^VmRSS:/ { print int($2 / 1024) }' "/proc/$1/status" 2>/dev/null || echo 0)
        ((rss >= $2)) && return 0
        sleep 0.05
    done
    echo "bench/checkpoint.sh: the workload did not grow to $2 MB" >&2
    exit 1
}

runc_pid() {
    runc --root "$work/runc" state "$name" | python3 -c 'import json, sys; print(json.load(sys.stdin)["pid"])'
}

declare -A res=()
for mb in $SIZES; do
    python3 - "$work/bundle/config.json" "$mb" <<'PY'
import json, sys
p, mb = sys.argv[1], sys.argv[2]
c = json.load(open(p))
c["process"]["args"] = ["/bin/resident", mb]
json.dump(c, open(p, "w"), indent=1)
PY
    for ((r = 0; r < RUNS; r++)); do
        # stasis
        "$stasis" --root "$work/state" run -d --name "$name" --rootfs "$rootfs" -- /bin/resident "$mb" >/dev/null
        wait_resident "$("$stasis" --root "$work/state" inspect -f '{{.State.Pid}}' "$name")" "$mb"
        t0=$(now); "$stasis" --root "$work/state" checkpoint "$name" >/dev/null; t1=$(now)
        dir=$("$stasis" --root "$work/state" inspect -f '{{.checkpoint.dir}}' "$name")
        size=$(du -sk "$dir/images" | cut -f1)
        t2=$(now); "$stasis" --root "$work/state" restore "$name" >/dev/null; t3=$(now)
        res[stasis,$mb,ckpt]+="$(ms "$t0" "$t1") "
        res[stasis,$mb,rest]+="$(ms "$t2" "$t3") "
        res[stasis,$mb,size]+="$size "
        "$stasis" --root "$work/state" rm -f "$name" >/dev/null
        # runc
        img=$work/runc-images
        rm -rf "$img"
        # Its streams on /dev/null: runc's CRIU cannot reconnect a host file.
        runc --root "$work/runc" run -d --bundle "$work/bundle" "$name" </dev/null >/dev/null 2>&1
        wait_resident "$(runc_pid)" "$mb"
        t0=$(now); runc --root "$work/runc" checkpoint --image-path "$img" "$name"; t1=$(now)
        size=$(du -sk "$img" | cut -f1)
        t2=$(now)
        runc --root "$work/runc" restore -d --image-path "$img" --bundle "$work/bundle" "$name" </dev/null >/dev/null 2>&1
        t3=$(now)
        [[ $(runc --root "$work/runc" state "$name" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])') == running ]] \
            || { echo "bench/checkpoint.sh: runc restore did not run it" >&2; exit 1; }
        res[runc,$mb,ckpt]+="$(ms "$t0" "$t1") "
        res[runc,$mb,rest]+="$(ms "$t2" "$t3") "
        res[runc,$mb,size]+="$size "
        runc --root "$work/runc" delete -f "$name" >/dev/null
    done
done

echo "load: $(cut -d' ' -f1-3 /proc/loadavg); runs: $RUNS; stasis: $PROFILE; CRIU: $(criu --version | head -1)"
echo
echo "| workload | tool | checkpoint, ms | restore, ms | images, MB |"
echo "|---|---|---:|---:|---:|"
for mb in $SIZES; do
    for tool in stasis runc; do
        c=$(tr ' ' '\n' <<<"${res[$tool,$mb,ckpt]}" | grep . | median)
        s=$(tr ' ' '\n' <<<"${res[$tool,$mb,rest]}" | grep . | median)
        z=$(tr ' ' '\n' <<<"${res[$tool,$mb,size]}" | grep . | median)
        echo "| $mb MB resident | $tool | $c | $s | $(awk -v k="$z" 'BEGIN { printf "%.1f", k / 1024 }') |"
    done
done
