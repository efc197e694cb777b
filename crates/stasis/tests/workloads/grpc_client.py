"""A gRPC client balancing round-robin over two servers:
   grpc_client.py PORT1 PORT2 SECONDS
calls /stasis.Echo/Echo with a 2 s deadline until both servers have
answered, prints `ready`, waits for a line on stdin, then calls in a loop
for SECONDS and prints `ok=N deadline_exceeded=N other=N slowest_ms=N`."""
import sys
import time

import grpc

p1, p2, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
channel = grpc.insecure_channel(
    f"ipv4:127.0.0.1:{p1},127.0.0.1:{p2}",
    options=[("grpc.lb_policy_name", "round_robin")])
echo = channel.unary_unary("/stasis.Echo/Echo")


def call():
    t0 = time.monotonic()
    try:
        echo(b"x", timeout=2)
        return "ok", time.monotonic() - t0
    except grpc.RpcError as e:
        kind = "deadline_exceeded" if e.code() == grpc.StatusCode.DEADLINE_EXCEEDED else "other"
        return kind, time.monotonic() - t0


for _ in range(200):
    if all(call()[0] == "ok" for _ in range(4)):
        break
    time.sleep(0.05)
print("ready", flush=True)
sys.stdin.readline()
counts = {"ok": 0, "deadline_exceeded": 0, "other": 0}
slowest = 0.0
end = time.monotonic() + seconds
while time.monotonic() < end:
    kind, took = call()
    counts[kind] += 1
    slowest = max(slowest, took)
print(f"ok={counts['ok']} deadline_exceeded={counts['deadline_exceeded']} "
      f"other={counts['other']} slowest_ms={int(slowest * 1000)}", flush=True)
