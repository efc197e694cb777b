#!/usr/bin/env bash
# The pods benchmark (issue 4): `stasis pod create` / `pod rm`, `stasis run -d`
# and idle-pod memory, side by side with the process start-up floor
# (/bin/true) and podman's pods (`podman pod create --network none`, with and
# without `pod start`, which is when its infra container and namespaces exist).
#
#   sudo bash bench/pods.sh
#
# Needs root, cargo, and these Debian packages, which it checks for but does
# not install (a benchmark should not change the machine it measures):
#
#   apt-get install -y hyperfine podman catatonit runc jq strace util-linux procps
#
# podman runs with a configuration of this script's own (cgroupfs, file events
# logger, runc, ulimits, and storage, run and tmp directories in a temporary
# directory), as ../shared/PEERS.md describes; it builds its pause image
# (catatonit) locally on the first `pod create`.
#
# Settings (environment):
#   RUNS=200 WARMUP=20        hyperfine runs and warm-ups of the stasis commands
#   PODMAN_RUNS=40 PODMAN_WARMUP=3   the same for the run that includes podman
#   PODS=1000                 idle stasis pods created for the memory figure
#   IDLE=0.05                 seconds of idle before the "cold" runs
#   PODMAN_PODS=50            started podman pods created for the memory figure
#   BENCH_RT=1                run hyperfine under `chrt -f 50` so that the figures
#                             do not measure the scheduler of a busy 2-core
#                             machine (in the run with podman, only hyperfine:
#                             its commands at normal priority, see below);
#                             BENCH_RT=0 for normal priority
#   MAX_LOAD=1.5 LOAD_WAIT=600   before each timed phase, wait (up to LOAD_WAIT
#                             seconds, checking every 30 s) for the 1-minute load
#                             average to drop below MAX_LOAD; the load measured
#                             is recorded with the results either way
#   RESULTS=DIR               where the hyperfine JSON and summary.md go
#                             (default: a new /tmp/stasis-bench-results.XXXXXX, kept)
#   CARGO_TARGET_DIR          honoured; default target/ in the repository
#
# Everything it creates (stasis pods under a private --root, with their pause
# processes, cgroups and namespace pins; podman pods under a private storage
# root; helper scripts) is removed by the EXIT trap, even on failure or Ctrl-C.
# It never touches pods, containers or cgroups it did not create.

set -euo pipefail

die() { echo "pods.sh: $*" >&2; exit 1; }
log() { echo "pods.sh: $*" >&2; }

[[ $EUID -eq 0 ]] || die "run as root (sudo bash bench/pods.sh)"
for tool in cargo hyperfine podman catatonit runc jq chrt awk; do
    command -v "$tool" >/dev/null ||
        die "$tool not found (apt-get install -y hyperfine podman catatonit runc jq strace util-linux procps)"
done

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
RUNS=${RUNS:-200}
WARMUP=${WARMUP:-20}
PODMAN_RUNS=${PODMAN_RUNS:-40}
PODMAN_WARMUP=${PODMAN_WARMUP:-3}
PODS=${PODS:-1000}
PODMAN_PODS=${PODMAN_PODS:-50}
BENCH_RT=${BENCH_RT:-1}
MAX_LOAD=${MAX_LOAD:-1.5}
LOAD_WAIT=${LOAD_WAIT:-600}
RESULTS=${RESULTS:-$(mktemp -d /tmp/stasis-bench-results.XXXXXX)}
mkdir -p "$RESULTS"

# --- build ------------------------------------------------------------------
log "building (release stasis, pause-profile stasis-pause)"
(cd "$REPO" && cargo build --release -p stasis && cargo build -p stasis-pause --profile pause) >&2
S=$TARGET_DIR/x86_64-unknown-linux-gnu/release/stasis
export STASIS_PAUSE=$TARGET_DIR/x86_64-unknown-linux-gnu/pause/stasis-pause
[[ -x $S && -x $STASIS_PAUSE ]] || die "built artifacts not found under $TARGET_DIR/x86_64-unknown-linux-gnu"

# --- private state and clean-up -----------------------------------------------
R=$(mktemp -d /tmp/stasis-bench-XXXXXX)          # stasis --root
W=$(mktemp -d /tmp/stasis-bench-work-XXXXXX)     # helper scripts
ST=(--root "$R")

# podman of our own: $PM, podman_cleanup, podman_unmount
. "$REPO/bench/podman-env.sh"

# Removes every stasis pod under $R (with its containers), nothing else.
cat >"$W/clean.sh" <<EOF
ids=\$("$S" --root "$R" pod ls -q)
[ -z "\$ids" ] || "$S" --root "$R" pod rm -f \$ids >/dev/null
EOF
# The same, then one fresh pod named benchpod (for rm -f and run --pod).
cat >"$W/prep-pod.sh" <<EOF
. "$W/clean.sh"
"$S" --root "$R" pod create --name benchpod >/dev/null
EOF

cleanup() {
    local rc=$? leftover m
    trap - EXIT INT TERM
    set +e
    if [[ -d $R ]]; then
        bash "$W/clean.sh" 2>/dev/null
        leftover=$(ls "$R/pods" 2>/dev/null)
        [[ -z $leftover ]] || log "WARNING: stasis pods left under $R/pods: $leftover"
    fi
    podman_cleanup
    podman_unmount
    rm -rf "$R" "$PM" "$W"
    for d in /sys/fs/cgroup/freezer/stasis /sys/fs/cgroup/unified/stasis; do
        [[ -d $d ]] || continue
        for id in "${CREATED_IDS[@]}"; do
            [[ -d $d/$id ]] && log "WARNING: cgroup $d/$id is left"
        done
    done
    if grep -q stasis-bench /proc/self/mountinfo; then
        log "WARNING: stasis-bench mounts are left:"; grep stasis-bench /proc/self/mountinfo >&2
    fi
    exit "$rc"
}
CREATED_IDS=()
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- helpers -----------------------------------------------------------------
load1() { cut -d' ' -f1 /proc/loadavg; }

wait_for_quiet() {  # $1: phase name; appends the load it starts under to $RESULTS/load.txt
    local waited=0
    while awk -v l="$(load1)" -v m="$MAX_LOAD" 'BEGIN { exit !(l > m) }'; do
        if ((waited >= LOAD_WAIT)); then
            log "load $(load1) still above $MAX_LOAD after ${waited}s: measuring anyway"
            break
        fi
        log "load $(load1) > $MAX_LOAD, waiting (${waited}s so far)"
        sleep 30; waited=$((waited + 30))
    done
    echo "$1: start $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RESULTS/load.txt"
}
loaded() { echo "$1: end $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RESULTS/load.txt"; }

RT=() RT_PARENT=()
if [[ $BENCH_RT == 1 ]]; then
    RT=(chrt -f 50)
    # podman cannot run real-time: runc's write of a SCHED_FIFO task into its
    # v1 cpu cgroup (no RT budget there) fails with EINVAL. For the run with
    # podman only hyperfine is real-time; the commands it starts are reset to
    # normal priority (SCHED_RESET_ON_FORK), the stasis one alike.
    RT_PARENT=(chrt -R -f 50)
fi

# meminfo field in kB
mem() { awk -v k="$1:" '$1 == k { print $2 }' /proc/meminfo; }
# median of 5 readings of the kernel's memory counters, 200 ms apart
KFIELDS=(MemAvailable MemFree Slab SUnreclaim KernelStack PageTables Percpu)
snapshot() {  # prints "field=value ..." (kB)
    local f i
    for f in "${KFIELDS[@]}"; do
        for i in 1 2 3 4 5; do mem "$f"; [[ $f == Percpu ]] || sleep 0.04; done |
            sort -n | sed -n 3p | sed "s/^/$f=/"
    done | tr '\n' ' '
}
get() { tr ' ' '\n' <<<"$2" | awk -F= -v k="$1" '$1 == k { print $2 }'; }

# summed Pss and Rss (kB) of the PIDs on stdin
pss_sum() {
    local pid pss=0 rss=0 p r
    while read -r pid; do
        [[ -r /proc/$pid/smaps_rollup ]] || continue
        p=$(awk '$1 == "Pss:" { print $2 }' "/proc/$pid/smaps_rollup")
        r=$(awk '$1 == "Rss:" { print $2 }' "/proc/$pid/smaps_rollup")
        pss=$((pss + ${p:-0})); rss=$((rss + ${r:-0}))
    done
    echo "$pss $rss"
}

# median (p25-p75) in ms of one hyperfine result, by command index
hf_row() {  # $1 json, $2 index
    jq -r --argjson i "$2" '.results[$i] | (.times | sort) as $t | ($t | length) as $n |
        [.median * 1000, $t[(($n - 1) * 0.25 | floor)] * 1000, $t[(($n - 1) * 0.75 | ceil)] * 1000]
        | map(. * 100 | round / 100 | tostring) | "\(.[0]) (\(.[1])–\(.[2]))"' "$1"
}
hf_median() { jq -r --argjson i "$2" '.results[$i].median * 1000' "$1"; }

SUMMARY=$RESULTS/summary.md
: >"$SUMMARY"
: >"$RESULTS/load.txt"
{
    echo "# bench/pods.sh results"
    echo
    echo "- $(date -u +%FT%TZ), $(nproc) cores, kernel $(uname -r), commit $(git -C "$REPO" rev-parse --short HEAD)$(git -C "$REPO" diff --quiet HEAD -- crates || echo ' + uncommitted changes in crates/')"
    echo "- $(hyperfine --version), $(podman --version), $(runc --version | head -1)"
    echo "- RUNS=$RUNS WARMUP=$WARMUP PODMAN_RUNS=$PODMAN_RUNS PODS=$PODS PODMAN_PODS=$PODMAN_PODS BENCH_RT=$BENCH_RT"
    echo
} >>"$SUMMARY"

# podman builds its infra image on the first pod create: do it outside the timings
log "building podman's pause image (first pod create)"
podman pod create --network none --name "sb-warm-$$" >/dev/null
podman pod rm -f "sb-warm-$$" >/dev/null

# --- 1: stasis commands, no shell ---------------------------------------------
# Each timed command runs right after its preparation (the removal of the pods
# of the run before), and again after IDLE seconds of idle ("cold"): a pod
# create moves its pause process into the pod's cgroups, and the first
# cgroup.procs write after a quiet spell waits for an RCU grace period
# (cgroup_threadgroup_rwsem, a percpu rwsem) that back-to-back runs share.
IDLE=${IDLE:-0.05}
wait_for_quiet stasis
log "hyperfine: /bin/true, stasis --version, pod create, pod rm -f, run -d (own pod / --pod), and cold"
"${RT[@]}" hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --style basic \
    --export-json "$RESULTS/stasis.json" --export-markdown "$RESULTS/stasis.md" \
    -p true -p true \
    -p "bash $W/clean.sh" -p "bash $W/prep-pod.sh" \
    -p "bash $W/clean.sh" -p "bash $W/prep-pod.sh" \
    -p "sleep $IDLE" \
    -p "bash -c '. $W/clean.sh; sleep $IDLE'" \
    -p "bash -c '. $W/clean.sh; sleep $IDLE'" \
    -c "bash $W/clean.sh" \
    -n "/bin/true" /bin/true \
    -n "stasis --version" "$S --version" \
    -n "stasis pod create" "$S ${ST[*]} pod create" \
    -n "stasis pod rm -f" "$S ${ST[*]} pod rm -f benchpod" \
    -n "stasis run -d -- /bin/true" "$S ${ST[*]} run -d -- /bin/true" \
    -n "stasis run -d --pod P -- /bin/true" "$S ${ST[*]} run -d --pod benchpod -- /bin/true" \
    -n "/bin/true, cold" /bin/true \
    -n "stasis pod create, cold" "$S ${ST[*]} pod create" \
    -n "stasis run -d -- /bin/true, cold" "$S ${ST[*]} run -d -- /bin/true" \
    >&2
loaded stasis
bash "$W/clean.sh"

# --- 2: create + rm (+ start) against podman, through sh -----------------------
wait_for_quiet podman
log "hyperfine: stasis pod create+rm against podman pod create(+start)+rm"
PN=sb-$$
"${RT_PARENT[@]}" hyperfine --warmup "$PODMAN_WARMUP" --runs "$PODMAN_RUNS" --style basic \
    --export-json "$RESULTS/podman.json" --export-markdown "$RESULTS/podman.md" \
    -c "bash $W/clean.sh" \
    -n "/bin/true" /bin/true \
    -n "stasis pod create + pod rm -f" \
    "$S ${ST[*]} pod create --name $PN >/dev/null && $S ${ST[*]} pod rm -f $PN >/dev/null" \
    -n "podman pod create + pod rm -f" \
    "podman pod create --network none --name $PN >/dev/null && podman pod rm -f $PN >/dev/null" \
    -n "podman pod create + pod start + pod rm -f" \
    "podman pod create --network none --name $PN >/dev/null && podman pod start $PN >/dev/null && podman pod rm -f $PN >/dev/null" \
    >&2
loaded podman
podman_cleanup

# --- 3: idle pods ---------------------------------------------------------------
wait_for_quiet idle-pods
log "creating $PODS idle stasis pods"
before=$(snapshot)
CREATE_NS=()
t0=$(date +%s%N)
for ((i = 0; i < PODS; i++)); do
    a=${EPOCHREALTIME/./}
    CREATED_IDS+=("$("$S" "${ST[@]}" pod create)")
    b=${EPOCHREALTIME/./}
    CREATE_NS+=($(((b - a) * 1000)))
done
t1=$(date +%s%N)
sleep 2
after=$(snapshot)
pause_pids() {
    local id
    local id  # the pause process sits in the pod's cgroup or a child of it
    for id in "${CREATED_IDS[@]}"; do
        cat /sys/fs/cgroup/freezer/stasis/"$id"/cgroup.procs /sys/fs/cgroup/freezer/stasis/"$id"/*/cgroup.procs 2>/dev/null
    done
}
npids=$(pause_pids | wc -l)
read -r pause_pss pause_rss < <(pause_pids | pss_sum)
# one more create with all of them present, under strace (where its time goes)
if command -v strace >/dev/null; then
    timeout -s KILL 30 strace -f -b execve -c -o "$RESULTS/strace-c-pod-create-$PODS.txt" \
        "$S" "${ST[@]}" pod create >/dev/null || true
    timeout -s KILL 30 strace -f -b execve -r -T -o "$RESULTS/strace-r-pod-create-$PODS.txt" \
        "$S" "${ST[@]}" pod create >/dev/null || true
fi
t2=$(date +%s%N)
"$S" "${ST[@]}" pod rm -f $("$S" "${ST[@]}" pod ls -q) >/dev/null
t3=$(date +%s%N)
sleep 2
removed=$(snapshot)
loaded idle-pods
echo "stasis before: $before" >"$RESULTS/meminfo.txt"
echo "stasis after $PODS pods: $after" >>"$RESULTS/meminfo.txt"
echo "stasis after rm: $removed" >>"$RESULTS/meminfo.txt"

# podman: PODMAN_PODS started pods
wait_for_quiet podman-pods
log "creating and starting $PODMAN_PODS podman pods"
pbefore=$(snapshot)
for ((i = 0; i < PODMAN_PODS; i++)); do
    podman pod create --network none --name "sb-idle-$$-$i" >/dev/null
    podman pod start "sb-idle-$$-$i" >/dev/null
    if ((i == 0)); then  # one pod alone: nothing shares its pages yet
        sleep 1
        p1=$(podman ps --filter "name=-infra" --format '{{.Pid}}')
        read -r cat1_pss _ < <(pss_sum <<<"$p1")
        read -r conmon1_pss _ < <(awk '{ print $4 }' "/proc/$p1/stat" | pss_sum)
    fi
done
sleep 2
pafter=$(snapshot)
infra_pids=$(podman ps --filter "name=-infra" --format '{{.Pid}}')
ninfra=$(wc -w <<<"$infra_pids")
read -r cat_pss cat_rss < <(tr ' ' '\n' <<<"$infra_pids" | pss_sum)
read -r conmon_pss conmon_rss < <(for p in $infra_pids; do awk '{ print $4 }' "/proc/$p/stat"; done | pss_sum)
podman_cleanup
sleep 2
premoved=$(snapshot)
loaded podman-pods
echo "podman before: $pbefore" >>"$RESULTS/meminfo.txt"
echo "podman after $PODMAN_PODS pods: $pafter" >>"$RESULTS/meminfo.txt"
echo "podman after rm: $premoved" >>"$RESULTS/meminfo.txt"

# --- 4: where a pod create goes (system calls) ------------------------------------
# strace -f would also follow the pod's pause process, which never exits:
# -b execve detaches from it at its execve; timeout bounds it anyway.
if command -v strace >/dev/null; then
    ST_RUN=(timeout -s KILL 30 strace -f -b execve)
    bash "$W/clean.sh"
    "${ST_RUN[@]}" -c -o "$RESULTS/strace-c-pod-create.txt" "$S" "${ST[@]}" pod create >/dev/null || true
    bash "$W/clean.sh"
    "${ST_RUN[@]}" -r -T -o "$RESULTS/strace-r-pod-create.txt" "$S" "${ST[@]}" pod create >/dev/null || true
    bash "$W/clean.sh"
    "${ST_RUN[@]}" -r -T -o "$RESULTS/strace-r-run-d.txt" "$S" "${ST[@]}" run -d -- /bin/true >/dev/null || true
    bash "$W/clean.sh"
    "${ST_RUN[@]}" -c -o "$RESULTS/strace-c-version.txt" "$S" --version >/dev/null || true
fi

# --- summary -------------------------------------------------------------------------
J1=$RESULTS/stasis.json J2=$RESULTS/podman.json
{
    echo "## Latency, ms, median (p25–p75)"
    echo
    echo "| command | ms |"
    echo "|---|---:|"
    for i in 0 1 2 3 4 5 6 7 8; do echo "| $(jq -r ".results[$i].command" "$J1") | $(hf_row "$J1" $i) |"; done
    echo
    echo "Through sh (hyperfine subtracts the shell's start-up):"
    echo
    echo "| command | ms |"
    echo "|---|---:|"
    for i in 0 1 2 3; do echo "| $(jq -r ".results[$i].command" "$J2") | $(hf_row "$J2" $i) |"; done
    echo
    t=$(hf_median "$J1" 0) c=$(hf_median "$J1" 2) r=$(hf_median "$J1" 4) rp=$(hf_median "$J1" 5)
    awk -v t="$t" -v c="$c" -v r="$r" -v rp="$rp" 'BEGIN {
        printf "- pod create median %.2f ms: target <= 5 ms %s\n", c, (c <= 5 ? "MET" : "MISSED")
        printf "- run -d (own pod) median %.2f ms; /bin/true + pod create = %.2f ms; ratio %.2f: target <= 2x %s\n",
            r, t + c, r / (t + c), (r <= 2 * (t + c) ? "MET" : "MISSED")
        printf "- run -d --pod median %.2f ms = %.2fx /bin/true\n", rp, rp / t
    }'
    t=$(hf_median "$J1" 6) c=$(hf_median "$J1" 7) r=$(hf_median "$J1" 8)
    awk -v t="$t" -v c="$c" -v r="$r" 'BEGIN {
        printf "- cold: pod create median %.2f ms: target <= 5 ms %s\n", c, (c <= 5 ? "MET" : "MISSED")
        printf "- cold: run -d median %.2f ms; /bin/true + pod create = %.2f ms; ratio %.2f: target <= 2x %s\n",
            r, t + c, r / (t + c), (r <= 2 * (t + c) ? "MET" : "MISSED")
    }'
    echo
    echo "## Idle pods"
    echo
    dav=$(( $(get MemAvailable "$before") - $(get MemAvailable "$after") ))
    dkern=0
    for f in Slab KernelStack PageTables Percpu; do
        dkern=$((dkern + $(get $f "$after") - $(get $f "$before")))
    done
    echo "- $PODS stasis pods ($npids pause processes) created one by one in $(( (t1 - t0) / 1000000 )) ms ($(( (t1 - t0) / PODS / 1000 )) µs each on average), removed with one pod rm -f in $(( (t3 - t2) / 1000000 )) ms"
    n10=$((PODS / 10))
    echo "  - pod create, median of the first $n10: $(printf '%s\n' "${CREATE_NS[@]:0:n10}" | sort -n | awk '{ a[NR] = $1 } END { printf "%.2f", a[int((NR + 1) / 2)] / 1e6 }') ms; of the last $n10: $(printf '%s\n' "${CREATE_NS[@]:PODS-n10}" | sort -n | awk '{ a[NR] = $1 } END { printf "%.2f", a[int((NR + 1) / 2)] / 1e6 }') ms"
    echo "- MemAvailable delta $dav kB = $((dav / PODS)) kB per pod; Slab+KernelStack+PageTables+Percpu delta $dkern kB = $((dkern / PODS)) kB per pod"
    for f in Slab SUnreclaim KernelStack PageTables Percpu; do
        echo "  - $f: $(( $(get $f "$after") - $(get $f "$before") )) kB"
    done
    echo "- pause processes: Pss sum $pause_pss kB ($(awk -v p="$pause_pss" -v n="$npids" 'BEGIN { printf "%.1f", p / (n ? n : 1) }') kB each), Rss sum $pause_rss kB"
    echo "- per pod, kernel counters + Pss: $(( (dkern + pause_pss) / PODS )) kB"
    echo "- after rm: MemAvailable $(( $(get MemAvailable "$removed") - $(get MemAvailable "$before") )) kB against before"
    pdav=$(( $(get MemAvailable "$pbefore") - $(get MemAvailable "$pafter") ))
    pdkern=0
    for f in Slab KernelStack PageTables Percpu; do
        pdkern=$((pdkern + $(get $f "$pafter") - $(get $f "$pbefore")))
    done
    echo "- $PODMAN_PODS started podman pods ($ninfra infra containers): MemAvailable delta $pdav kB = $((pdav / PODMAN_PODS)) kB per pod; Slab+KernelStack+PageTables+Percpu $pdkern kB = $((pdkern / PODMAN_PODS)) kB per pod"
    echo "  - catatonit Pss $(awk -v p="$cat_pss" -v n="$ninfra" 'BEGIN { printf "%.0f", p / (n ? n : 1) }') kB each (Rss $(awk -v p="$cat_rss" -v n="$ninfra" 'BEGIN { printf "%.0f", p / (n ? n : 1) }')), conmon Pss $(awk -v p="$conmon_pss" -v n="$ninfra" 'BEGIN { printf "%.0f", p / (n ? n : 1) }') kB each (Rss $(awk -v p="$conmon_rss" -v n="$ninfra" 'BEGIN { printf "%.0f", p / (n ? n : 1) }'))"
    for f in Slab SUnreclaim KernelStack PageTables Percpu; do
        echo "  - $f: $(( $(get $f "$pafter") - $(get $f "$pbefore") )) kB"
    done
    echo "  - one podman pod alone: catatonit Pss $cat1_pss kB, conmon Pss $conmon1_pss kB"
    echo "- per podman pod, kernel counters + Pss of catatonit and conmon: $(( (pdkern + cat_pss + conmon_pss) / PODMAN_PODS )) kB"
    echo "- after rm: MemAvailable $(( $(get MemAvailable "$premoved") - $(get MemAvailable "$pbefore") )) kB against before"
    echo
    echo "## Load average (1, 5, 15 min)"
    echo
    sed 's/^/- /' "$RESULTS/load.txt"
} >>"$SUMMARY"

cat "$SUMMARY"
log "results in $RESULTS"
