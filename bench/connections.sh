#!/usr/bin/env bash
# The --reset-connections benchmark (issue 9): the cost of the reset on the
# pause itself with 0, 100 and 1,000 connections held to a server in the
# target cgroup (side by side with the same pause without the flag), and,
# against a real RabbitMQ broker on 127.0.0.1, the time from
# `stasis pause --reset-connections` returning to the first message of the
# frozen consumer redelivered to another one (and, for contrast, one round
# without the flag, which waits for the broker's 10 s heartbeat), and, with
# two gRPC backends and a client balancing round-robin over them, the time
# from the pause of one backend returning to the first call answered after it
# (by the other backend).
#
#   sudo bash bench/connections.sh
#
# Needs root, cargo, and the Debian packages python3, python3-pika,
# python3-grpcio, nftables and rabbitmq-server, which it checks for but does
# not install.
#
# Settings (environment): ROUNDS=30 (cost rounds per count), RABBIT_ROUNDS=20,
# GRPC_ROUNDS=20,
# COUNTS="0 100 1000", BENCH_RT=1 (run the driver under chrt -f 50).
#
# Everything it creates (a v1 cgroup stasis-bench-<random>, the echo server
# and consumers in it, a private broker and its epmd, a state root) is removed
# by the EXIT trap; processes are killed by PID.
set -euo pipefail

die() { echo "connections.sh: $*" >&2; exit 1; }
[[ $EUID -eq 0 ]] || die "run as root"
for tool in cargo python3 /usr/bin/python3 nft rabbitmq-server epmd chrt; do
    command -v "$tool" >/dev/null || die "$tool not found (apt-get install -y python3 python3-pika python3-grpcio nftables rabbitmq-server)"
done
/usr/bin/python3 -c 'import grpc, pika' 2>/dev/null || die "python3-pika and python3-grpcio are needed"

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
ROUNDS=${ROUNDS:-30}
RABBIT_ROUNDS=${RABBIT_ROUNDS:-20}
GRPC_ROUNDS=${GRPC_ROUNDS:-20}
COUNTS=${COUNTS:-"0 100 1000"}
BENCH_RT=${BENCH_RT:-1}
RT=(); [[ $BENCH_RT == 1 ]] && RT=(chrt -f 50)

(cd "$REPO" && cargo build --quiet --release -p stasis)
S=$TARGET_DIR/x86_64-unknown-linux-gnu/release/stasis
ID=stasis-bench-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')
CG=/sys/fs/cgroup/freezer/$ID
ROOT=$(mktemp -d /tmp/stasis-bench-XXXXXX)
RMQ=$(mktemp -d /tmp/stasis-bench-rmq-XXXXXX)
export STASIS_ROOT=$ROOT
pids=()
cleanup() {
    "$S" unpause --cgroup "$CG" >/dev/null 2>&1 || true
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    if [[ -f $RMQ/pid ]]; then kill "$(cat "$RMQ/pid")" 2>/dev/null || true; fi
    for _ in $(seq 100); do
        [[ -d $CG ]] || break
        for p in $(cat "$CG/cgroup.procs" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
        rmdir "$CG" 2>/dev/null && break
        sleep 0.1
    done
    [[ -n ${epmd:-} ]] && kill "$epmd" 2>/dev/null || true
    sleep 1
    rm -rf "$ROOT" "$RMQ"
}
trap cleanup EXIT
mkdir "$CG"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "== cost of --reset-connections (ms, median of $ROUNDS)"
port=$(free_port)
ulimit -n 8192
sh -c 'echo $$ > "$0/cgroup.procs" && exec python3 "$@"' "$CG" \
    "$REPO/crates/stasis/tests/workloads/tcp_echo.py" 127.0.0.1 "$port" &
pids+=($!)
for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
# shellcheck disable=SC2086
"${RT[@]}" python3 "$REPO/bench/connections.py" cost "$S" "$port" "$CG" "$ROUNDS" $COUNTS
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true

echo "== RabbitMQ: pause returned -> first redelivered message at the other consumer (ms)"
mkdir -p "$RMQ/mnesia" "$RMQ/log" "$RMQ/home"
echo '[].' > "$RMQ/plugins"
printf 'loopback_users = none\nheartbeat = 10\n' > "$RMQ/rabbitmq.conf"
chown -R rabbitmq:rabbitmq "$RMQ"
amqp=$(free_port); dist=$(free_port); epmd_port=$(free_port)
epmd -address 127.0.0.1 -port "$epmd_port" & epmd=$!
(cd "$RMQ" && env RABBITMQ_MNESIA_BASE="$RMQ/mnesia" RABBITMQ_LOG_BASE="$RMQ/log" \
    RABBITMQ_NODENAME="$ID@localhost" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
    RABBITMQ_NODE_PORT="$amqp" RABBITMQ_DIST_PORT="$dist" ERL_EPMD_ADDRESS=127.0.0.1 \
    ERL_EPMD_PORT="$epmd_port" RABBITMQ_PID_FILE="$RMQ/pid" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$RMQ/plugins" RABBITMQ_CONFIG_FILE="$RMQ/rabbitmq" \
    HOME="$RMQ/home" setsid rabbitmq-server >"$RMQ/out" 2>&1 &)
for _ in $(seq 600); do (echo > /dev/tcp/127.0.0.1/$amqp) 2>/dev/null && break; sleep 0.1; done
echo "| | median | p90 |"
echo "|---|---:|---:|"
"${RT[@]}" /usr/bin/python3 "$REPO/bench/connections.py" rabbit "$S" \
    "amqp://guest:guest@127.0.0.1:$amqp/%2F" "$CG" \
    "$REPO/crates/stasis/tests/workloads/rabbit_consumer.py" "$RABBIT_ROUNDS"

echo "== gRPC: pause of one of two backends returned -> first call answered (ms)"
"${RT[@]}" /usr/bin/python3 "$REPO/bench/connections.py" grpc "$S" "$CG" "$GRPC_ROUNDS"
