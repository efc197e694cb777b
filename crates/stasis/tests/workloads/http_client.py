"""GETs from the server on one kept-alive connection: once at start, then
once more for every line on stdin, printing each answer."""
import http.client
import sys

conn = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=60)


def get():
    conn.request("GET", "/")
    print(conn.getresponse().read().decode().strip(), flush=True)


get()
for _ in sys.stdin:
    print("sent", flush=True)
    get()
