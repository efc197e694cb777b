"""The driver of bench/connections.sh (run it through that script).

  connections.py cost STASIS PORT CGROUP_DIR ROUNDS COUNTS...
      For each count N (side by side, interleaved per round): hold N
      connections to the echo server in CGROUP_DIR, then time
      `stasis pause --cgroup DIR` with and without --reset-connections
      (each followed by an untimed unpause). Prints medians and p90s.

  connections.py rabbit STASIS URL CGROUP_DIR CONSUMER ROUNDS
      Times, per round, from `stasis pause --reset-connections` returning to
      the first redelivered message at consumer B (this process), while
      consumer A (CONSUMER, started into CGROUP_DIR) holds five unacked
      messages; then one round without the flag, timed until the broker's
      heartbeat timeout redelivers them.

  connections.py grpc STASIS CGROUP_DIR ROUNDS
      Two gRPC backends (this file's grpc-server mode), A started into
      CGROUP_DIR and B outside it; a client in this process balancing
      round-robin over both calls back to back with a 2 s deadline. Per
      round, once A has served calls again, it times from
      `stasis pause --reset-connections` returning to the first call
      answered after that (by B: A is frozen), and notes the longest call
      around the pause; then rounds without the flag, for contrast.

  connections.py grpc-server PORT NAME
      A backend: /stasis.Echo/Echo answers NAME.
"""
import os
import socket
import statistics
import subprocess
import sys
import threading
import time


def stasis(binary, *args):
    run = subprocess.run([binary, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if run.returncode != 0:
        sys.exit(f"stasis {' '.join(args)}: exit {run.returncode}: {run.stderr.strip()}")


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def cost(binary, port, cgroup, rounds, counts):
    held = []

    def fill(n):
        for s in held:
            s.close()
        held.clear()
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port))
            held.append(s)
        # One round trip on the last one: the server has accepted them all.
        if held:
            held[-1].sendall(b"x\n")
            held[-1].recv(16)

    times = {(n, flag): [] for n in counts for flag in (False, True)}
    for _ in range(rounds):
        for n in counts:
            for flag in (False, True):
                fill(n)
                args = ["pause", "--cgroup", cgroup] + (["--reset-connections"] if flag else [])
                t0 = time.perf_counter()
                stasis(binary, *args)
                times[(n, flag)].append((time.perf_counter() - t0) * 1000)
                stasis(binary, "unpause", "--cgroup", cgroup)
    print("| connections | `stasis pause` | with `--reset-connections` | difference |")
    print("|---:|---:|---:|---:|")
    for n in counts:
        plain, reset = times[(n, False)], times[(n, True)]
        mp, mr = statistics.median(plain), statistics.median(reset)
        print(f"| {n} | {mp:.2f} (p90 {pct(plain, 90):.2f}) | {mr:.2f} (p90 {pct(reset, 90):.2f}) | {mr - mp:+.2f} |")


def rabbit(binary, url, cgroup, consumer, rounds):
    import pika

    queue = "bench"
    seen = []
    lock = threading.Lock()

    def consume():
        conn = pika.BlockingConnection(pika.URLParameters(url))
        ch = conn.channel()
        ch.queue_declare(queue=queue)

        def on_message(ch, method, props, body):
            if method.redelivered:
                with lock:
                    seen.append(time.perf_counter())
            ch.basic_ack(delivery_tag=method.delivery_tag)

        ch.basic_consume(queue=queue, on_message_callback=on_message)
        ch.start_consuming()

    def publish(n):
        conn = pika.BlockingConnection(pika.URLParameters(url))
        ch = conn.channel()
        ch.queue_declare(queue=queue)
        for i in range(n):
            ch.basic_publish(exchange="", routing_key=queue, body=f"m{i}")
        conn.close()

    out = f"/tmp/stasis-bench-rabbit-a-{os.getpid()}"

    def start_a():
        open(out, "w").close()
        a = subprocess.Popen(
            ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', cgroup,
             "/usr/bin/python3", consumer, url, queue, out, "hold", "5"],
            stdin=subprocess.DEVNULL)
        while "connected" not in open(out).read():
            time.sleep(0.01)
        return a

    def held_by_a():
        return open(out).read().count("got ")

    publish(0)
    b = None
    delays = []
    for flag in [True] * rounds + [False]:
        a = start_a()
        # B (once started) takes its turn in the broker's round robin:
        # publish until A holds five (its prefetch).
        while held_by_a() < 5:
            publish(1)
            time.sleep(0.02)
        if b is None:
            b = threading.Thread(target=consume, daemon=True)
            b.start()
            time.sleep(0.5)
        with lock:
            seen.clear()
        args = ["pause", "--cgroup", cgroup] + (["--reset-connections"] if flag else [])
        stasis(binary, *args)
        t0 = time.perf_counter()
        limit = t0 + (5 if flag else 120)
        while time.perf_counter() < limit:
            with lock:
                if seen:
                    break
            time.sleep(0.0005)
        with lock:
            first = seen[0] if seen else None
        delay = None if first is None else (first - t0) * 1000
        if flag:
            delays.append(delay)
        else:
            plain = delay
        stasis(binary, "unpause", "--cgroup", cgroup)
        a.kill()
        a.wait()
        time.sleep(0.3)
    got = [d for d in delays if d is not None]
    print(f"| with `--reset-connections` ({len(got)} of {rounds} rounds redelivered) | "
          f"{statistics.median(got):.1f} | {pct(got, 90):.1f} |")
    print(f"| without (heartbeat 10 s) | {'none in 120 s' if plain is None else f'{plain:.0f}'} | |")


def grpc_server(port, name):
    from concurrent import futures

    import grpc

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    answer = name.encode()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "stasis.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(lambda req, ctx: answer)}),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    server.wait_for_termination()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port):
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", port), 0.1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"port {port} never opened")


def grpc_bench(binary, cgroup, rounds):
    import grpc

    me = os.path.abspath(__file__)
    pa, pb = free_port(), free_port()
    a = subprocess.Popen(
        ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', cgroup,
         "/usr/bin/python3", me, "grpc-server", str(pa), "A"], stdin=subprocess.DEVNULL)
    b = subprocess.Popen(["/usr/bin/python3", me, "grpc-server", str(pb), "B"],
                         stdin=subprocess.DEVNULL)
    wait_port(pa)
    wait_port(pb)
    # Short reconnect backoff, so that A is back in the rotation soon after
    # each unpause and every round starts with both backends serving.
    channel = grpc.insecure_channel(
        f"ipv4:127.0.0.1:{pa},127.0.0.1:{pb}",
        options=[("grpc.lb_policy_name", "round_robin"),
                 ("grpc.initial_reconnect_backoff_ms", 100),
                 ("grpc.min_reconnect_backoff_ms", 100),
                 ("grpc.max_reconnect_backoff_ms", 200)])
    echo = channel.unary_unary("/stasis.Echo/Echo")
    calls = []  # (start, end, answer or None)
    lock = threading.Lock()
    stop = threading.Event()

    def caller():
        while not stop.is_set():
            t0 = time.perf_counter()
            try:
                who = echo(b"x", timeout=2).decode()
            except grpc.RpcError:
                who = None
            with lock:
                calls.append((t0, time.perf_counter(), who))

    thread = threading.Thread(target=caller, daemon=True)
    thread.start()

    def a_serving_since(t):
        with lock:
            return any(w == "A" for s, _, w in calls if s >= t)

    results = {True: [], False: []}
    plain_rounds = min(5, rounds)
    try:
        for flag in [True] * rounds + [False] * plain_rounds:
            t = time.perf_counter()
            while not a_serving_since(t):
                if time.perf_counter() - t > 30:
                    raise SystemExit("backend A did not come back within 30 s")
                time.sleep(0.01)
            time.sleep(0.2)
            args = ["pause", "--cgroup", cgroup] + (["--reset-connections"] if flag else [])
            t0 = time.perf_counter()
            stasis(binary, *args)
            t1 = time.perf_counter()
            limit = t1 + 5
            first = None
            while first is None and time.perf_counter() < limit:
                with lock:
                    done = [e for s, e, w in calls if s >= t1 and w is not None]
                if done:
                    first = done[0]
                time.sleep(0.0005)
            time.sleep(0.3)
            with lock:
                around = [e - s for s, e, _ in calls if e >= t0 - 0.05]
                failed = sum(1 for s, e, w in calls if e >= t0 and w is None)
            stasis(binary, "unpause", "--cgroup", cgroup)
            results[flag].append(((first - t1) * 1000 if first else None,
                                  max(around) * 1000, failed))
    finally:
        stop.set()
        thread.join(5)
        channel.close()
        for p in (a, b):
            p.kill()
            p.wait()
    print("| | first call answered after the pause returned: median | p90 | longest call around the pause: median | failed calls per round |")
    print("|---|---:|---:|---:|---:|")
    for flag, label in ((True, f"with `--reset-connections` ({rounds} rounds)"),
                        (False, f"without ({plain_rounds} rounds)")):
        rows = results[flag]
        firsts = [r[0] for r in rows if r[0] is not None]
        first = f"{statistics.median(firsts):.1f}" if firsts else "none in 5 s"
        p90 = f"{pct(firsts, 90):.1f}" if firsts else ""
        longest = statistics.median(r[1] for r in rows)
        failed = statistics.median(r[2] for r in rows)
        print(f"| {label} | {first} | {p90} | {longest:.1f} | {failed:g} |")


if __name__ == "__main__":
    if sys.argv[1] == "grpc-server":
        grpc_server(int(sys.argv[2]), sys.argv[3])
    elif sys.argv[1] == "grpc":
        grpc_bench(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif sys.argv[1] == "cost":
        cost(sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), [int(n) for n in sys.argv[6:]])
    else:
        rabbit(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]))
