"""An HTTP/1.1 server on 127.0.0.1 that keeps state in memory: every GET
answers `count=<requests so far> peer=<client port>`, so a client can tell
that the server's memory and its own connection survived a pause."""
import http.server
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    count = 0

    def do_GET(self):
        Handler.count += 1
        body = f"count={Handler.count} peer={self.client_address[1]}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
print("listening", flush=True)
server.serve_forever()
