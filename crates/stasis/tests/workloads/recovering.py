"""A server that needs a second of running time before it is ready: at its
start, and again after it notices that it was frozen (a gap between its
ticks). While it is not ready it has no listener and no READY file. On every
tick, after handling a gap, it writes the wall-clock time in milliseconds to
BEAT, so that a check can tell a server that has not run since a thaw.

    recovering.py PORT READY BEAT
"""
import os
import socket
import sys
import time

port, ready, beat = int(sys.argv[1]), sys.argv[2], sys.argv[3]
TICK = 0.05
# A stall this long is taken for a freeze: well above what a loaded 2-core
# machine makes a 50 ms sleep take, well below the tests' freezes (1 s).
GAP = 0.6
WARMUP = 20  # ticks of running time: one second


def write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


listener = None
steps = 0
last = time.monotonic()
while True:
    now = time.monotonic()
    if now - last > GAP:
        if listener is not None:
            listener.close()
            listener = None
        if os.path.exists(ready):
            os.remove(ready)
        steps = 0
        print("recovering", flush=True)
    last = now
    if listener is None:
        steps += 1
        if steps >= WARMUP:
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", port))
            listener.listen(16)
            listener.setblocking(False)
            write(ready, "ready")
            print("ready", flush=True)
    else:
        try:
            while True:
                listener.accept()[0].close()
        except BlockingIOError:
            pass
    write(beat, str(time.time_ns() // 1_000_000))
    time.sleep(TICK)
