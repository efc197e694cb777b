"""A busy process with state to keep across a pause.

Holds 1 MiB of random memory, an open counter file it rewrites on every loop
iteration, an open log file, and a TCP connection to the test. It greets with
the digest of its memory; each "ping" line it receives is answered with
"pong <digest> <count>" and logged, so the test can check that memory, open
files and the connection all survived.
"""
import hashlib
import os
import socket
import sys

port, counter_path, log_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
memory = bytearray(os.urandom(1 << 20))
digest = hashlib.sha256(memory).hexdigest()
counter = os.open(counter_path, os.O_WRONLY | os.O_CREAT, 0o644)
log = open(log_path, "a", buffering=1)
conn = socket.create_connection(("127.0.0.1", port))
conn.sendall(f"hello {digest}\n".encode())
conn.setblocking(False)
pending = b""
count = 0
while True:
    count += 1
    os.pwrite(counter, b"%020d" % count, 0)
    try:
        data = conn.recv(4096)
    except BlockingIOError:
        continue
    if not data:
        sys.exit(0)
    pending += data
    while b"\n" in pending:
        line, pending = pending.split(b"\n", 1)
        if line == b"ping":
            reply = f"pong {hashlib.sha256(memory).hexdigest()} {count}\n"
            log.write(reply)
            conn.setblocking(True)
            conn.sendall(reply.encode())
            conn.setblocking(False)
