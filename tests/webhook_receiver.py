"""A real HTTP receiver for webhook tests and the bench: records every request and answers
each one as its script says (a status, headers, or holding the connection until released)."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Answer:
    """How to answer one request."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    hold: threading.Event | None = None  # answer only once this is set (a slow receiver)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def msg_id(self) -> str:
        return self.headers["webhook-id"]


class Receiver:
    """An HTTP server on 127.0.0.1 that answers scripted answers, then 200s."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.connections = 0  # TCP connections accepted (keep-alive reuses one)
        self.script: deque[Answer] = deque()
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with receiver.lock:
                    receiver.connections += 1

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("content-length", 0))
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver.lock:
                    receiver.requests.append(Received(self.path, headers, body))
                    answer = receiver.script.popleft() if receiver.script else Answer()
                    receiver.arrived.notify_all()
                if answer.hold is not None:
                    answer.hold.wait(30)
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    # 204 and 304 answers have no body (HTTP): a client reads none, so one
                    # sent anyway would be taken for the start of the next answer.
                    body = b"" if answer.status in (204, 304) else answer.body
                    if body or answer.status not in (204, 304):
                        self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the sender gave up (timeout) or died

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            # socketserver listens with a backlog of 5: a burst of concurrent senders beyond
            # it waits for SYN retransmits (1 s, 3 s, ...) before it is even accepted.
            request_queue_size = 128

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a sender that hung up (a timeout, a killed process) is expected here

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def answer(self, *answers: Answer) -> None:
        with self.lock:
            self.script.extend(answers)

    def wait_count(self, n: int, timeout: float = 10.0) -> list[Received]:
        """Wait until at least n requests arrived; return them."""
        with self.lock:
            if not self.arrived.wait_for(lambda: len(self.requests) >= n, timeout):
                raise AssertionError(f"{len(self.requests)} requests arrived, expected {n}")
            return list(self.requests)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
