#!/usr/bin/env bash
# The freezer benchmark (issue 2): `stasis pause` / `unpause` side by side with
# the process start-up floor (/bin/true), `runc pause/resume` and
# `crun pause/resume` on containers of the same size, and the bare kernel
# freeze measured by crates/freezer/examples/kernel-freeze.rs.
#
#   sudo bash bench/freeze.sh
#
# Needs root, a hybrid or v1 host with the v1 freezer at /sys/fs/cgroup/freezer
# and cgroup2 at /sys/fs/cgroup/unified (see ../shared/PEERS.md), cargo, and
# these Debian packages, which it checks for but does not install (a benchmark
# should not change the machine it measures):
#
#   apt-get install -y hyperfine runc crun busybox-static jq
#
# Settings (environment):
#   RUNS=200 WARMUP=20   hyperfine runs and warm-ups per command
#   KF_RUNS=200          timed freezes per kernel-freeze run
#   GAP=0.05             seconds every prepare step waits after changing the
#                        state: cgroup2 sends at most one cgroup.events
#                        notification per DIV_ROUND_UP(HZ, 100) jiffies and
#                        defers the rest to a timer (up to ~16 ms at HZ=250,
#                        and a deferred one restarts the window), so a v2
#                        pause polled soon after an unpause measures that
#                        rate limit; the anatomy run shows it without the gap
#   BENCH_RT=1           run the measuring processes under `chrt -f 50`, so the
#                        figures do not measure the scheduler on a busy 2-core
#                        machine; BENCH_RT=0 to run them at normal priority
#   RESULTS=DIR          where the hyperfine JSON/markdown and the summary go
#                        (default: a new /tmp/stasis-bench-results.XXXXXX, kept)
#   CARGO_TARGET_DIR     honoured; default target/ in the repository
#
# Everything it creates (cgroups named stasis-bench-<random>-*, their
# processes, runc/crun containers under private state roots, the rootfs and
# bundles) is removed by the EXIT trap, even on failure or Ctrl-C. Processes
# are killed only by the PIDs listed in those cgroups.

set -euo pipefail

die() { echo "freeze.sh: $*" >&2; exit 1; }

[[ $EUID -eq 0 ]] || die "run as root (sudo bash bench/freeze.sh)"
for tool in cargo hyperfine runc crun busybox jq unshare chrt; do
    command -v "$tool" >/dev/null || die "$tool not found (apt-get install -y hyperfine runc crun busybox-static jq)"
done

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
RUNS=${RUNS:-200}
WARMUP=${WARMUP:-20}
KF_RUNS=${KF_RUNS:-200}
GAP=${GAP:-0.05}
KF_GAP_MS=$(awk -v g="$GAP" 'BEGIN { printf "%d", g * 1000 }')
BENCH_RT=${BENCH_RT:-1}
V1=/sys/fs/cgroup/freezer
V2=/sys/fs/cgroup/unified
[[ -d $V1 && ! -f $V1/cgroup.controllers ]] || die "no v1 freezer at $V1"
[[ -f $V2/cgroup.procs ]] || die "no cgroup2 tree at $V2"

ID=stasis-bench-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')
WORK=$(mktemp -d "/tmp/$ID.XXXXXX")
RESULTS=${RESULTS:-$(mktemp -d /tmp/stasis-bench-results.XXXXXX)}
mkdir -p "$RESULTS"
RUNC_ROOT=$WORK/runc-root
CRUN_ROOT=$WORK/crun-root
RT=()
[[ $BENCH_RT == 1 ]] && RT=(chrt -f 50)

CGROUPS=()    # cgroup directories this script made (not the containers')
LEADERS=()    # PIDs of the shells that populated them (our children)
RUNC_IDS=()
CRUN_IDS=()

# Thaw, kill every PID listed, wait (bounded) until empty, rmdir.
remove_cgroup() {
    local dir=$1 pid i
    [[ -d $dir ]] || return 0
    if [[ -f $dir/freezer.state ]]; then
        echo THAWED >"$dir/freezer.state" 2>/dev/null || true
    fi
    if [[ -f $dir/cgroup.freeze ]]; then
        echo 0 >"$dir/cgroup.freeze" 2>/dev/null || true
    fi
    for ((i = 0; i < 500; i++)); do
        # kernfs reports size 0: test the content, not -s.
        [[ -n $(<"$dir/cgroup.procs") ]] || break
        if [[ -f $dir/cgroup.kill ]]; then
            echo 1 >"$dir/cgroup.kill" 2>/dev/null || true
        else
            while read -r pid; do
                kill -KILL "$pid" 2>/dev/null || true
            done <"$dir/cgroup.procs"
        fi
        sleep 0.02
    done
    for ((i = 0; i < 100; i++)); do
        rmdir "$dir" 2>/dev/null && return 0
        [[ -d $dir ]] || return 0
        sleep 0.05
    done
    echo "freeze.sh: could not remove $dir" >&"${ERR:-2}"
    return 1
}

cleanup() {
    local status=$? id dir pid
    set +e
    trap - EXIT INT TERM
    # bash reports each populating shell that the kill below ends ("Killed"):
    # keep that off the terminal, and our own messages on it.
    exec {ERR}>&2 2>/dev/null
    for id in "${RUNC_IDS[@]}"; do
        runc --root "$RUNC_ROOT" delete -f "$id" >/dev/null 2>&1
    done
    for id in "${CRUN_IDS[@]}"; do
        crun --root "$CRUN_ROOT" delete -f "$id" >/dev/null 2>&1
    done
    # kernel-freeze removes its own cgroups; these globs catch a killed one.
    for dir in "${CGROUPS[@]}" "$V1/$ID"-* "$V2/$ID"-*; do
        remove_cgroup "$dir" || status=1
    done
    for pid in "${LEADERS[@]}"; do
        wait "$pid"
    done
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits until FILE (a cgroup.procs) lists N processes, for at most 60 s.
wait_procs() {
    local file=$1 n=$2 i count=0
    for ((i = 0; i < 1200; i++)); do
        [[ -f $file ]] && count=$(wc -l <"$file")
        [[ $count -eq $n ]] && return 0
        sleep 0.05
    done
    die "$file lists $count processes, not $n, after 60 s"
}

# A cgroup holding exactly N sleeping processes: a shell moves itself in,
# starts N-1 sleeps and becomes the last.
make_cgroup() {
    local dir=$1 n=$2
    mkdir "$dir"
    CGROUPS+=("$dir")
    # shellcheck disable=SC2016 # expanded by the inner shell
    sh -c 'echo $$ >"$1/cgroup.procs" || exit 1
           i=1; while [ $i -lt "$2" ]; do sleep 1000 & i=$((i + 1)); done
           exec sleep 1000' sh "$dir" "$n" </dev/null >/dev/null 2>&1 &
    LEADERS+=($!)
    wait_procs "$dir/cgroup.procs" "$n"
}

echo "== building (release) into $TARGET_DIR"
(cd "$REPO" && cargo build --release --quiet -p stasis -p freezer --example kernel-freeze)
STASIS=$TARGET_DIR/x86_64-unknown-linux-gnu/release/stasis
KFREEZE=$TARGET_DIR/x86_64-unknown-linux-gnu/release/examples/kernel-freeze
[[ -x $STASIS && -x $KFREEZE ]] || die "build did not produce $STASIS and $KFREEZE"

echo "== rootfs and bundles in $WORK"
ROOTFS=$WORK/rootfs
mkdir -p "$ROOTFS/bin" "$ROOTFS/proc" "$ROOTFS/dev" "$ROOTFS/sys" "$ROOTFS/tmp" "$RUNC_ROOT" "$CRUN_ROOT"
cp "$(command -v busybox)" "$ROOTFS/bin/busybox"
chroot "$ROOTFS" /bin/busybox --install -s /bin
: >"$WORK/empty"

# make_bundle DIR CGROUP-NAME N: a bundle whose container holds N sleeps.
make_bundle() {
    local bundle=$1 cgroup=$2 n=$3 args
    mkdir -p "$bundle"
    runc spec --bundle "$bundle"
    if [[ $n -eq 1 ]]; then
        args='["sleep","1000"]'
    else
        args=$(jq -cn --arg s "for i in \$(seq $((n - 1))); do sleep 1000 & done; exec sleep 1000" '["sh","-c",$s]')
    fi
    jq --argjson args "$args" --arg root "$ROOTFS" --arg cg "/$cgroup" \
        '.process.args = $args | .process.terminal = false | .root.path = $root
         | .root.readonly = true | .linux.cgroupsPath = $cg' \
        "$bundle/config.json" >"$bundle/config.json.new"
    mv "$bundle/config.json.new" "$bundle/config.json"
}

for n in 1 100; do
    echo "== $n-process cgroups and containers"
    make_cgroup "$V1/$ID-v1-$n" "$n"
    make_cgroup "$V2/$ID-v2-$n" "$n"

    make_bundle "$WORK/runc-$n" "$ID-runc-$n" "$n"
    RUNC_IDS+=("$ID-runc-$n")
    runc --root "$RUNC_ROOT" run -d --bundle "$WORK/runc-$n" "$ID-runc-$n" </dev/null >"$WORK/runc-$n.log" 2>&1 \
        || die "runc run failed: $(cat "$WORK/runc-$n.log")"
    wait_procs "$V1/$ID-runc-$n/cgroup.procs" "$n"

    make_bundle "$WORK/crun-$n" "$ID-crun-$n" "$n"
    CRUN_IDS+=("$ID-crun-$n")
    # crun refuses a hybrid host whose cgroup2 has a controller attached; it
    # only looks at cgroup.controllers when creating (PEERS.md).
    # shellcheck disable=SC2016 # expanded by the inner shell
    unshare -m --propagation private sh -c \
        'mount --bind "$1" /sys/fs/cgroup/unified/cgroup.controllers && exec crun --root "$2" run -d --bundle "$3" "$4"' \
        sh "$WORK/empty" "$CRUN_ROOT" "$WORK/crun-$n" "$ID-crun-$n" </dev/null >"$WORK/crun-$n.log" 2>&1 \
        || die "crun run failed: $(cat "$WORK/crun-$n.log")"
    wait_procs "$V1/$ID-crun-$n/cgroup.procs" "$n"
done

# The prepare step of a timed command: put the target in the state the command
# changes (the command may find nothing to do and fail: ignored), then idle
# GAP seconds so the kernel's cgroup.events rate limit has expired.
prep() { echo "sh -c '$* >/dev/null 2>&1; sleep $GAP'"; }
HF=("${RT[@]}" hyperfine -N --runs "$RUNS" --warmup "$WARMUP" --time-unit millisecond --style basic)

# One hyperfine run per size, so the figures are comparable: the start-up
# floor and every pause and unpause, each prepared by its opposite.
bench_size() {
    local n=$1 v1=$V1/$ID-v1-$1 v2=$V2/$ID-v2-$1 r=$ID-runc-$1 c=$ID-crun-$1
    echo "== hyperfine, $n process(es)"
    "${HF[@]}" --export-json "$RESULTS/size-$n.json" --export-markdown "$RESULTS/size-$n.md" \
        -n '/bin/true' --prepare "sleep $GAP" /bin/true \
        -n 'stasis pause v1' --prepare "$(prep "$STASIS" unpause --cgroup "$v1")" "$STASIS pause --cgroup $v1" \
        -n 'stasis unpause v1' --prepare "$(prep "$STASIS" pause --cgroup "$v1")" "$STASIS unpause --cgroup $v1" \
        -n 'stasis pause v2' --prepare "$(prep "$STASIS" unpause --cgroup "$v2")" "$STASIS pause --cgroup $v2" \
        -n 'stasis unpause v2' --prepare "$(prep "$STASIS" pause --cgroup "$v2")" "$STASIS unpause --cgroup $v2" \
        -n 'runc pause' --prepare "$(prep runc --root "$RUNC_ROOT" resume "$r")" "runc --root $RUNC_ROOT pause $r" \
        -n 'runc resume' --prepare "$(prep runc --root "$RUNC_ROOT" pause "$r")" "runc --root $RUNC_ROOT resume $r" \
        -n 'crun pause' --prepare "$(prep crun --root "$CRUN_ROOT" resume "$c")" "crun --root $CRUN_ROOT pause $c" \
        -n 'crun resume' --prepare "$(prep crun --root "$CRUN_ROOT" pause "$c")" "crun --root $CRUN_ROOT resume $c"
}
bench_size 1
bench_size 100

# Where one stasis call spends its time: start-up and argument parsing alone
# (--version), reading the state (hierarchy discovery and reads, no write), the
# pause; and a v2 pause right after an unpause, without the idle gap, which
# shows the cgroup.events rate limit.
echo "== hyperfine, anatomy of one call"
A=$V1/$ID-v1-1
B=$V2/$ID-v2-100
"${HF[@]}" --export-json "$RESULTS/anatomy.json" --export-markdown "$RESULTS/anatomy.md" \
    -n '/bin/true' --prepare "sleep $GAP" /bin/true \
    -n 'stasis --version' --prepare "sleep $GAP" "$STASIS --version" \
    -n 'stasis state v1' --prepare "sleep $GAP" "$STASIS state --cgroup $A" \
    -n 'stasis pause v1' --prepare "$(prep "$STASIS" unpause --cgroup "$A")" "$STASIS pause --cgroup $A" \
    -n 'stasis pause v2 100, no gap' --prepare "sh -c '$STASIS unpause --cgroup $B >/dev/null 2>&1 || true'" \
    "$STASIS pause --cgroup $B"
"$STASIS" unpause --cgroup "$A" >/dev/null 2>&1 || true
"$STASIS" unpause --cgroup "$B" >/dev/null 2>&1 || true

echo "== kernel-freeze (bare kernel: write, then confirm)"
: >"$RESULTS/kernel-freeze.txt"
for h in v1 v2; do
    for n in 1 100 1000; do
        "${RT[@]}" "$KFREEZE" --hierarchy "$h" --procs "$n" --runs "$KF_RUNS" --gap-ms "$KF_GAP_MS" \
            --name "$ID-kf-$h-$n" | tee -a "$RESULTS/kernel-freeze.txt"
    done
done
for n in 100 1000; do
    "${RT[@]}" "$KFREEZE" --hierarchy v2 --procs "$n" --runs "$KF_RUNS" --gap-ms 0 \
        --name "$ID-kf-v2-$n-nogap" | tee -a "$RESULTS/kernel-freeze.txt"
done

echo "== 1000-process cgroups"
make_cgroup "$V1/$ID-v1-1000" 1000
make_cgroup "$V2/$ID-v2-1000" 1000
echo "== hyperfine, 1000 processes"
bench_1000() {
    local v1=$V1/$ID-v1-1000 v2=$V2/$ID-v2-1000
    "${HF[@]}" --export-json "$RESULTS/size-1000.json" --export-markdown "$RESULTS/size-1000.md" \
        -n '/bin/true' --prepare "sleep $GAP" /bin/true \
        -n 'stasis pause v1' --prepare "$(prep "$STASIS" unpause --cgroup "$v1")" "$STASIS pause --cgroup $v1" \
        -n 'stasis unpause v1' --prepare "$(prep "$STASIS" pause --cgroup "$v1")" "$STASIS unpause --cgroup $v1" \
        -n 'stasis pause v2' --prepare "$(prep "$STASIS" unpause --cgroup "$v2")" "$STASIS pause --cgroup $v2" \
        -n 'stasis unpause v2' --prepare "$(prep "$STASIS" pause --cgroup "$v2")" "$STASIS unpause --cgroup $v2"
}
bench_1000

# The summary: medians and interquartile ranges (ms), then the issue's ratios.
{
    echo "machine: $(nproc) cores, kernel $(uname -r), hyperfine runs=$RUNS warmup=$WARMUP gap=${GAP}s, rt=${RT[*]:-none}"
    echo
    printf '%-6s %-28s %9s %9s %9s\n' size command median_ms p25_ms p75_ms
    for f in size-1 size-100 size-1000 anatomy; do
        jq -r --arg f "$f" '.results[] | (.times | sort) as $t | ($t | length) as $l
            | [$f, .command, ($t[($l / 2 | floor)] * 1000), ($t[($l / 4 | floor)] * 1000), ($t[($l * 3 / 4 | floor)] * 1000)]
            | @tsv' "$RESULTS/$f.json" |
            awk -F'\t' '{ sub("size-", "", $1); printf "%-6s %-28s %9.3f %9.3f %9.3f\n", $1, $2, $3, $4, $5 }'
    done
    echo
    cat "$RESULTS/kernel-freeze.txt"
    echo
    # hyperfine's median of COMMAND in size-N.json, in ms
    med() { jq -r --arg c "$2" '.results[] | select(.command == $c) | .median * 1000' "$RESULTS/size-$1.json"; }
    # kernel-freeze's median freeze for HIERARCHY and N processes (with the gap), in ms
    kf() {
        awk -v h="hierarchy=$1" -v n="procs=$2" -v g="gap_ms=$KF_GAP_MS" '$2 == h && $3 == n && $5 == g {
            sub("freeze_median_us=", "", $6); print $6 / 1000 }' "$RESULTS/kernel-freeze.txt"
    }
    ratio() { awk -v a="$2" -v b="$3" -v what="$1" 'BEGIN { printf "  %-54s %6.2fx  (%.3f / %.3f ms)\n", what, a / b, a, b }'; }
    echo "ratios (medians):"
    for n in 1 100; do
        t=$(med "$n" /bin/true)
        for v in v1 v2; do
            ratio "stasis pause $v / /bin/true, $n proc" "$(med "$n" "stasis pause $v")" "$t"
        done
        for peer in crun runc; do
            ratio "stasis pause v1 / $peer pause, $n proc" "$(med "$n" 'stasis pause v1')" "$(med "$n" "$peer pause")"
            ratio "stasis unpause v1 / $peer resume, $n proc" "$(med "$n" 'stasis unpause v1')" "$(med "$n" "$peer resume")"
        done
    done
    t=$(med 1000 /bin/true)
    for v in v1 v2; do
        p=$(med 1000 "stasis pause $v")
        k=$(kf "$v" 1000)
        ratio "stasis pause $v / kernel freeze $v, 1000 procs" "$p" "$k"
        ratio "stasis pause $v / (/bin/true + kernel freeze $v), 1000" "$p" "$(awk -v a="$t" -v b="$k" 'BEGIN { print a + b }')"
    done
} | tee "$RESULTS/summary.txt"

echo "results in $RESULTS"
