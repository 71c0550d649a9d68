"""A tiny reverse proxy for tests: `python -m tests.proxy <listen port> <upstream port>`.

It forwards each HTTP request to 127.0.0.1:<upstream port> and appends the client's address to
X-Forwarded-For, as a load balancer does, so that tests can put several clients (bound to
different loopback addresses, 127.0.0.2, 127.0.0.3, ...) behind one proxy address.
"""

from __future__ import annotations

import http.client
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection"}


def make_handler(upstream_port: int) -> type[BaseHTTPRequestHandler]:
    """Return a request handler class that forwards to the upstream port."""

    class Forward(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            prior = self.headers.get("X-Forwarded-For")
            client = self.client_address[0]
            headers["X-Forwarded-For"] = f"{prior}, {client}" if prior else client
            upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=30)
            try:
                upstream.request(self.command, self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
                self.send_response(answer.status, answer.reason)
                for name, value in answer.getheaders():
                    if name.lower() not in HOP_BY_HOP | {"content-length"}:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            finally:
                upstream.close()

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base's name
            pass

    return Forward


def main() -> None:
    """Serve until killed."""
    listen, upstream = int(sys.argv[1]), int(sys.argv[2])
    server = ThreadingHTTPServer(("127.0.0.1", listen), make_handler(upstream))
    server.serve_forever()


if __name__ == "__main__":
    main()
