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
"""
import os
import socket
import statistics
import subprocess
import sys
import threading
import time


def stasis(binary, *args):
    subprocess.run([binary, *args], check=True, stdout=subprocess.DEVNULL)


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


if __name__ == "__main__":
    if sys.argv[1] == "cost":
        cost(sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), [int(n) for n in sys.argv[6:]])
    else:
        rabbit(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]))
