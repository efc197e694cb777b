"""A gRPC server (Debian's python3-grpcio, for /usr/bin/python3) on
127.0.0.1:PORT with one unary method, /stasis.Echo/Echo, that answers with
the request's bytes. No generated code: a generic handler on raw bytes."""
import sys
from concurrent import futures

import grpc

server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
    "stasis.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(lambda req, ctx: req)}),))
server.add_insecure_port(f"127.0.0.1:{sys.argv[1]}")
server.start()
server.wait_for_termination()
