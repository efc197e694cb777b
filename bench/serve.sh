#!/usr/bin/env bash
# The `stasis serve` benchmark (issue 10): `docker pause` + `docker unpause`
# of one container through stasis serve, the real dockerd and
# `podman system service`, side by side in one hyperfine run with the docker
# CLI's own floor, twice: two `docker --version`, and the same pause and
# unpause through a daemon that does nothing (the CLI's cost as a client,
# crates/api/examples/null-daemon.rs), and stasis serve against that daemon
# again in pairs (both in every round, RUNS rounds; with BENCH_RT=1 a second
# time with both daemons at the client's real-time priority); the service's own time for one
# pause against the bare kernel freeze, without the service's freezer anchor
# and with it (docs/api.md), and the same request's floor through the null
# daemon (a socket and HTTP, nothing done); 32 clients pausing and unpausing
# their own containers for 10 s; and resident memory, idle and under load,
# next to dockerd + containerd and the podman service. The service's own
# time and the load are driven by crates/api/examples/serve-client.rs, a
# client that costs little (one thread per client, one write and a read or
# two per request), so that on 2 cores the figures are the service's.
#
#   sudo bash bench/serve.sh
#
# Needs root, cargo, hyperfine, the docker CLI, docker.io (dockerd,
# containerd), podman, busybox-static, which it checks for but does not
# install. Settings: RUNS=100 WARMUP=10 OWN_ROUNDS=500 CLIENTS=32 LOAD_SECONDS=10
# BENCH_RT=1 (hyperfine and the one-pause timer under chrt -f 50; never the
# load's clients, which would then starve the service they measure).
#
# Everything it creates (a state root, dockerd's and podman's directories,
# their containers, the sockets) is in one temporary directory, removed by
# the EXIT trap; daemons are stopped by the PIDs they were started with.
set -euo pipefail

die() { echo "serve.sh: $*" >&2; exit 1; }
[[ $EUID -eq 0 ]] || die "run as root"
for tool in cargo hyperfine docker dockerd podman busybox python3 chrt; do
    command -v "$tool" >/dev/null || die "$tool not found"
done

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
RUNS=${RUNS:-100}
WARMUP=${WARMUP:-10}
OWN_ROUNDS=${OWN_ROUNDS:-500}
CLIENTS=${CLIENTS:-32}
LOAD_SECONDS=${LOAD_SECONDS:-10}
BENCH_RT=${BENCH_RT:-1}
RT=(); [[ $BENCH_RT == 1 ]] && RT=(chrt -f 50)

# Two builds: the example's dev-dependencies would change the features the
# binaries are built with, and with them the binaries.
(cd "$REPO" && cargo build --quiet --release -p stasis -p stasis-pause)
(cd "$REPO" && cargo build --quiet --release -p api --example serve-client --example null-daemon)
S=$TARGET_DIR/x86_64-unknown-linux-gnu/release/stasis
CLIENT=$TARGET_DIR/x86_64-unknown-linux-gnu/release/examples/serve-client
NULL_DAEMON=$TARGET_DIR/x86_64-unknown-linux-gnu/release/examples/null-daemon
export STASIS_PAUSE=$TARGET_DIR/x86_64-unknown-linux-gnu/release/stasis-pause
D=$(mktemp -d /tmp/stasis-bench-serve-XXXXXX)
# The state root under /run, where stasis's default /run/stasis is (a tmpfs on
# most hosts; ext4 on these machines).
export STASIS_ROOT=$(mktemp -d /run/stasis-bench-root-XXXXXX)
pids=()
cleanup() {
    set +e
    [[ -n ${docker_pid:-} ]] && docker -H "unix://$D/docker.sock" rm -f bench >/dev/null 2>&1
    [[ -n ${podman_pid:-} ]] && docker -H "unix://$D/podman.sock" rm -f bench >/dev/null 2>&1
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    done
    "$S" pod rm -f $("$S" pod ls -q 2>/dev/null) >/dev/null 2>&1
    umount -R "$D/podman" 2>/dev/null
    rm -rf "$D" "$STASIS_ROOT" /etc/docker/key.json
}
trap cleanup EXIT

# A busybox root filesystem for dockerd and podman.
mkdir -p "$D/rootfs/bin" "$D/rootfs/etc"
cp /bin/busybox "$D/rootfs/bin/"
for t in sh sleep; do ln -s busybox "$D/rootfs/bin/$t"; done
tar -C "$D/rootfs" -cf "$D/rootfs.tar" .

# A container of stasis's own (by the CLI: the service's store).
"$S" run -d --name bench -- sleep 100000 >/dev/null
cgroup=$("$S" state bench --format json | python3 -c '
import json, sys
v = json.load(sys.stdin)
for h in v["hierarchies"]:
    if h["hierarchy"] == "v1":
        print(h["path"])')
[[ -n $cgroup ]] || die "no v1 freezer cgroup for the container (stasis state bench --format json)"

# First, without the freezer's anchor (docs/api.md), the service's own time
# for one pause and the bare freeze, both with the kernel's freezer switched
# on and off at each (nothing else on the host is frozen); the service is
# then stopped, so that its successor's anchor is the only one.
echo "== the service's own time for one pause, without the freezer's anchor (ms); $(uptime)"
"$S" serve --no-freezer-anchor --socket "$D/cold.sock" 2>"$D/cold.log" &
cold_pid=$!; pids+=("$cold_pid")
for _ in $(seq 100); do [[ -S $D/cold.sock ]] && break; sleep 0.1; done
"${RT[@]}" "$CLIENT" own "$D/cold.sock" bench "$cgroup/freezer.state" "$OWN_ROUNDS"
kill "$cold_pid"; wait "$cold_pid" || die "the anchorless service did not exit 0"

# stasis serve, as it runs by default.
"$S" serve --socket "$D/stasis.sock" 2>"$D/serve.log" &
serve_pid=$!; pids+=("$serve_pid")
for _ in $(seq 100); do [[ -S $D/stasis.sock ]] && break; sleep 0.1; done

# The CLI's floor as a client: a daemon that answers _ping, pause and
# unpause and does nothing (crates/api/examples/null-daemon.rs).
"$NULL_DAEMON" "$D/null.sock" 2>"$D/null.log" &
null_pid=$!; pids+=("$null_pid")
for _ in $(seq 100); do [[ -S $D/null.sock ]] && break; sleep 0.1; done

# dockerd, as ../shared/PEERS.md says, with everything in $D.
mkdir -p "$D/docker"
setsid dockerd --data-root "$D/docker/data" --exec-root "$D/docker/exec" \
    --pidfile "$D/docker/docker.pid" -H "unix://$D/docker.sock" --iptables=false \
    --ip6tables=false --ip-masq=false --ip-forward=false --bridge=none \
    --storage-driver=vfs >"$D/dockerd.log" 2>&1 &
docker_pid=$!; pids+=("$docker_pid")
for _ in $(seq 300); do docker -H "unix://$D/docker.sock" version >/dev/null 2>&1 && break; sleep 0.1; done
docker -H "unix://$D/docker.sock" import "$D/rootfs.tar" bbox >/dev/null
docker -H "unix://$D/docker.sock" run -d --network none --name bench bbox sleep 100000 >/dev/null

# podman system service, with a configuration of its own.
mkdir -p "$D/podman"
cat >"$D/podman/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=8192:8192"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
EOF
cat >"$D/podman/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$D/podman/storage"
runroot = "$D/podman/run"
EOF
export CONTAINERS_CONF=$D/podman/containers.conf CONTAINERS_STORAGE_CONF=$D/podman/storage.conf
podman --tmpdir "$D/podman/tmp" system service --time 0 "unix://$D/podman.sock" >"$D/podman.log" 2>&1 &
podman_pid=$!; pids+=("$podman_pid")
for _ in $(seq 300); do docker -H "unix://$D/podman.sock" version >/dev/null 2>&1 && break; sleep 0.1; done
podman --tmpdir "$D/podman/tmp" import "$D/rootfs.tar" localhost/bbox >/dev/null
podman --tmpdir "$D/podman/tmp" run -d --network none --name bench localhost/bbox sleep 100000 >/dev/null

echo "== docker pause + unpause round trip (ms); $(uptime)"
rt() { echo "docker -H unix://$D/$1.sock pause bench >/dev/null && docker -H unix://$D/$1.sock unpause bench >/dev/null"; }
"${RT[@]}" hyperfine --warmup "$WARMUP" --runs "$RUNS" --style basic --export-json "$D/rt.json" \
    -n "docker CLI floor (two docker --version)" "docker --version >/dev/null && docker --version >/dev/null" \
    -n "docker CLI floor as a client (a daemon that does nothing)" "$(rt null)" \
    -n "stasis serve" "$(rt stasis)" \
    -n "dockerd 20.10" "$(rt docker)" \
    -n "podman system service" "$(rt podman)" >"$D/rt.txt"
python3 - "$D/rt.json" <<'EOF'
import json, statistics, sys
r = json.load(open(sys.argv[1]))["results"]
print("| through | median | p25–p75 |")
print("|---|---:|---:|")
for x in r:
    t = sorted(v * 1000 for v in x["times"])
    q = lambda p: t[int(p * (len(t) - 1))]
    print(f"| {x['command']} | {statistics.median(t):.2f} | {q(0.25):.2f}–{q(0.75):.2f} |")
EOF

# hyperfine runs each command's rounds together, so the machine's drift
# over a run falls on some more than others; what stasis serve adds to the
# CLI's floor as a client is measured again in pairs, the two run one
# after the other in every round.
cat >"$D/pairs.py" <<'EOF'
import statistics, subprocess, sys, time
null, stasis, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
def once(sock):
    t = time.perf_counter()
    for verb in ("pause", "unpause"):
        subprocess.run(["docker", "-H", f"unix://{sock}", verb, "bench"],
                       check=True, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - t) * 1000
a, b, diffs = [], [], []
for i in range(rounds):
    # Alternate which goes first, so that neither always follows the other.
    if i % 2:
        y = once(stasis); x = once(null)
    else:
        x = once(null); y = once(stasis)
    a.append(x); b.append(y); diffs.append(y - x)
q = lambda v, p: sorted(v)[int(p * (len(v) - 1))]
print("| | median | p25–p75 |")
print("|---|---:|---:|")
print(f"| null daemon | {statistics.median(a):.2f} | {q(a, .25):.2f}–{q(a, .75):.2f} |")
print(f"| stasis serve | {statistics.median(b):.2f} | {q(b, .25):.2f}–{q(b, .75):.2f} |")
print(f"| stasis serve − null daemon, per pair | {statistics.median(diffs):+.2f} | {q(diffs, .25):+.2f}–{q(diffs, .75):+.2f} |")
EOF
echo "== docker pause + unpause, stasis serve against the null daemon, in pairs (ms); $(uptime)"
"${RT[@]}" python3 "$D/pairs.py" "$D/null.sock" "$D/stasis.sock" "$RUNS"
if [[ $BENCH_RT == 1 ]]; then
    # Under chrt the CLI's threads outrank the daemons, which run at normal
    # priority: a daemon that works while the CLI's other threads spin
    # waits for them. Again with both daemons at the client's priority,
    # every thread, then back.
    echo "== the same pairs, both daemons at the client's priority (ms); $(uptime)"
    chrt -a -f -p 50 "$serve_pid" && chrt -a -f -p 50 "$null_pid"
    "${RT[@]}" python3 "$D/pairs.py" "$D/null.sock" "$D/stasis.sock" "$RUNS"
    chrt -a -o -p 0 "$serve_pid" && chrt -a -o -p 0 "$null_pid"
fi

echo "== the service's own time for one pause, with its anchor held (ms); $(uptime)"
"${RT[@]}" "$CLIENT" own "$D/stasis.sock" bench "$cgroup/freezer.state" "$OWN_ROUNDS"
echo "== the same timer against the null daemon: one request's floor, nothing frozen by it (ms); $(uptime)"
"${RT[@]}" "$CLIENT" own "$D/null.sock" bench "$cgroup/freezer.state" "$OWN_ROUNDS"

echo "== $CLIENTS clients pausing and unpausing their own containers"
names=()
for i in $(seq "$CLIENTS"); do
    "$S" run -d --name "load$i" -- sleep 100000 >/dev/null
    names+=("load$i")
done
echo "load: $(uptime)"
"$CLIENT" load "$D/stasis.sock" "$LOAD_SECONDS" "$serve_pid" "${names[@]}"

echo "== resident memory (MB)"
rss() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
containerd_pid=$(pgrep -P "$docker_pid" -x containerd || true)
echo "| stasis serve | $(rss "$serve_pid") |"
echo "| dockerd + containerd | $(rss "$docker_pid") + $( [[ -n $containerd_pid ]] && rss "$containerd_pid" || echo ?) |"
echo "| podman system service | $(rss "$podman_pid") |"
