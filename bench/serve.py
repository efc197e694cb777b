"""The driver of bench/serve.sh (run it through that script).

  serve.py own SOCKET CONTAINER CGROUP_DIR ROUNDS
      The service's own time for one pause: POST /containers/C/pause then
      /unpause over one kept-alive connection, timed at the client from the
      request's first byte to the response's last (the socket's round trip
      is a few microseconds), against the bare kernel freeze of the same
      cgroup: `FROZEN` written to its v1 freezer.state and read back until
      the kernel says FROZEN, then `THAWED`.

  serve.py load SOCKET SECONDS CONTAINER...
      One client process per container, each on its own connection, pausing
      and unpausing its container back to back for SECONDS; prints the
      requests per second, p50 and p99 of all of them, and the service's
      resident memory (VmRSS of the PID in SERVE_PID) sampled under load.
"""
import http.client
import multiprocessing
import os
import socket
import statistics
import sys
import time


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=30)
        self.path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30)
        s.connect(self.path)
        self.sock = s


def post(conn, path):
    conn.request("POST", path, body=b"", headers={"Content-Length": "0"})
    r = conn.getresponse()
    body = r.read()
    if r.status >= 300:
        sys.exit(f"POST {path}: {r.status} {body!r}")


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def own(sock, container, cgroup, rounds):
    conn = UnixConnection(sock)
    api, kernel = [], []
    state = os.path.join(cgroup, "freezer.state")

    def write(word):
        with open(state, "w") as f:
            f.write(word)

    def read():
        with open(state) as f:
            return f.read().strip()

    for _ in range(rounds):
        t0 = time.perf_counter()
        post(conn, f"/v1.44/containers/{container}/pause")
        t1 = time.perf_counter()
        post(conn, f"/v1.44/containers/{container}/unpause")
        api.append((t1 - t0) * 1000)
        t0 = time.perf_counter()
        write("FROZEN")
        while read() != "FROZEN":
            pass
        t1 = time.perf_counter()
        write("THAWED")
        kernel.append((t1 - t0) * 1000)
    ma, mk = statistics.median(api), statistics.median(kernel)
    print("| | median | p90 |")
    print("|---|---:|---:|")
    print(f"| `POST /containers/C/pause`, request to response | {ma:.3f} ms | {pct(api, 90):.3f} ms |")
    print(f"| the bare kernel freeze (v1 `freezer.state`) | {mk:.3f} ms | {pct(kernel, 90):.3f} ms |")
    print(f"| ratio | {ma / mk:.2f}× | |")


def client(sock, container, seconds, out):
    conn = UnixConnection(sock)
    lat = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        for verb in ("pause", "unpause"):
            t0 = time.perf_counter()
            post(conn, f"/v1.44/containers/{container}/{verb}")
            lat.append((time.perf_counter() - t0) * 1000)
    out.put(lat)


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def load(sock, seconds, containers):
    pid = int(os.environ["SERVE_PID"])
    idle = rss_kb(pid)
    out = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=client, args=(sock, c, seconds, out)) for c in containers]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    peak = idle
    while any(p.is_alive() for p in procs) and time.perf_counter() < t0 + seconds + 30:
        peak = max(peak, rss_kb(pid))
        time.sleep(0.2)
        if out.qsize() == len(procs):
            break
    lat = []
    for _ in procs:
        lat.extend(out.get(timeout=60))
    for p in procs:
        p.join(10)
    took = time.perf_counter() - t0
    print(f"| {len(containers)} clients, {seconds} s | {len(lat) / took:.0f} requests/s | "
          f"p50 {statistics.median(lat):.2f} ms | p99 {pct(lat, 99):.2f} ms | "
          f"RSS idle {idle / 1024:.1f} MB, under load {peak / 1024:.1f} MB |")


if __name__ == "__main__":
    if sys.argv[1] == "own":
        own(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        load(sys.argv[2], float(sys.argv[3]), sys.argv[4:])
