"""Plain HTTP requests skip the Socket.IO middleware: it only serves its own path.

Flask-SocketIO puts its middleware (python-engineio's WSGIApp) in front of the whole Flask app.
On every request, Socket.IO's or not, that middleware copies the WSGI environ and, under
gunicorn, defines a new class to wrap gunicorn's socket (engineio's `Input`), before it looks
at the path: about 30 µs of a ~250 µs `/healthz` (bench/README.md, "web layer fixed cost").
This dispatcher looks at the path first, with the same test the middleware applies, and hands
everything outside the Socket.IO path straight to Flask.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

# Flask-SocketIO's default path (`SocketIO(path=...)`), as engine.io matches it.
SOCKETIO_PREFIX = "/socket.io/"

WSGIApp = Callable[[dict[str, Any], Callable], Iterable[bytes]]


class SocketIOPathDispatch:
    """WSGI: the Socket.IO path to the socket stack, every other path straight to Flask."""

    def __init__(self, sockets: WSGIApp, http: WSGIApp, prefix: str = SOCKETIO_PREFIX) -> None:
        self.sockets = sockets
        self.http = http
        self.prefix = prefix

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO")
        if path is not None and path.startswith(self.prefix):
            return self.sockets(environ, start_response)
        return self.http(environ, start_response)
