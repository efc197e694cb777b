"""A TCP echo server: listens on HOST:PORT (argv 1 and 2) and sends every
line a client writes back to it, one thread per connection."""
import socket
import sys
import threading


def serve(conn):
    with conn:
        try:
            for line in conn.makefile("rb"):
                conn.sendall(line)
        except OSError:  # reset by a pause with --reset-connections
            pass


family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
listener = socket.socket(family, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind((sys.argv[1], int(sys.argv[2])))
listener.listen(64)
while True:
    conn, _ = listener.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
