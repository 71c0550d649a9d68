"""Bound what a websocket client can make the server read: message size and rate.

simple-websocket (the websocket server under python-engineio with gevent) reads a connection as
fast as bytes arrive and keeps every message whole until engine.io takes it; engine.io checks
`max_http_buffer_size` only after the whole message was buffered, and its gevent driver passes
no `max_message_size` to simple-websocket. A client sending one 100 MB message at full speed
grew a process by about as much before it was refused.

This WSGI middleware hands simple-websocket the connection's socket (the documented
`gunicorn.socket` / `werkzeug.socket` of the WSGI environ) wrapped in `BoundedSocket`, which
reads the frame headers of the client's bytes as they pass:

- a message whose frames announce more than `max_message_bytes` is refused as soon as the
  header says so (before its payload is read): the client gets a close frame 1009 "message too
  big" and the connection ends;
- a client sending faster than `rate_bytes_s` (after a burst of `burst_bytes`) is not read
  until it is back within its rate: the kernel's buffers fill and TCP makes it wait.

Per-message deflate is not negotiated (the client's offer is removed): how large a compressed
message becomes is only known once it is inflated (a 1 MB message can inflate to 1 GB), and
Socket.IO's own server has it off by default since v3.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger(__name__)

MESSAGE_TOO_BIG = 1009
SOCKET_KEYS = ("gunicorn.socket", "werkzeug.socket")


class BoundedSocket:
    """A socket proxy that refuses oversized websocket messages and paces a fast sender."""

    def __init__(
        self,
        sock: Any,
        max_message_bytes: int,
        rate_bytes_s: float,
        burst_bytes: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner = sock
        # Bound once: the writer sends every frame through these (no __getattr__ per frame).
        self.send = sock.send
        self.sendall = sock.sendall
        self.max_message_bytes = max_message_bytes
        self.rate_bytes_s = rate_bytes_s
        self.burst_bytes = burst_bytes
        self.clock = clock
        self.refused: str | None = None
        self.stopped = False
        self._tokens = burst_bytes
        self._stamp = clock()
        self._head = bytearray()  # the frame header read so far
        self._skip = 0  # payload bytes of the current frame still to pass
        self._message = 0  # payload bytes of the current message so far

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def stop(self) -> None:
        """Read nothing more: the connection was closed by the server (the reader ends)."""
        self.stopped = True

    def recv(self, size: int) -> bytes:
        """Read like socket.recv; b'' once the client broke a bound (the close was sent)."""
        if self.refused or self.stopped:
            return b""
        self._pace()
        data = self.inner.recv(size)
        if self.stopped:
            return b""
        self._tokens -= len(data)
        self._feed(data)
        if self.refused:
            self._close(MESSAGE_TOO_BIG, self.refused)
            return b""
        return data

    def _pace(self) -> None:
        now = self.clock()
        self._tokens = min(self.burst_bytes, self._tokens + (now - self._stamp) * self.rate_bytes_s)
        self._stamp = now
        if self._tokens < 0:
            # Not reading is the backpressure: the sender's writes block on a full window.
            time.sleep(-self._tokens / self.rate_bytes_s)
        else:
            time.sleep(0)  # let the connection's consumer take what was read

    def _feed(self, data: bytes) -> None:
        i, end = 0, len(data)
        while i < end and not self.refused:
            if self._skip:
                take = min(self._skip, end - i)
                self._skip -= take
                i += take
                continue
            self._head.append(data[i])
            i += 1
            self._parse_head()

    def _parse_head(self) -> None:
        head = self._head
        if len(head) < 2:
            return
        short = head[1] & 0x7F
        extended = 2 if short == 126 else 8 if short == 127 else 0
        masked = 4 if head[1] & 0x80 else 0
        if len(head) < 2 + extended + masked:
            return
        length = int.from_bytes(head[2 : 2 + extended], "big") if extended else short
        fin, compressed, opcode = head[0] & 0x80, head[0] & 0x40, head[0] & 0x0F
        head.clear()
        self._skip = length
        if opcode >= 0x8:
            return  # control frames: at most 125 bytes, between a message's frames
        self._message += length
        if compressed:
            self.refused = "compressed messages are not accepted"
        elif self._message > self.max_message_bytes:
            self.refused = f"message over {self.max_message_bytes} bytes"
        elif fin:
            self._message = 0

    def _close(self, code: int, reason: str) -> None:
        log.warning("websocket closed: %s", reason)
        payload = code.to_bytes(2, "big") + reason.encode()[:120]
        try:
            self.inner.sendall(bytes([0x88, len(payload)]) + payload)
        except OSError:
            pass


class BoundedWebSocketInput:
    """WSGI middleware: websocket upgrades read through a `BoundedSocket`."""

    def __init__(
        self,
        app: Callable[..., Iterable[bytes]],
        max_message_bytes: int,
        rate_bytes_s: float = 256 * 1024,
        burst_bytes: float | None = None,
    ) -> None:
        self.app = app
        # Room for engine.io's packet type around a message of the transport's limit.
        self.max_message_bytes = max_message_bytes + 64
        self.rate_bytes_s = rate_bytes_s
        self.burst_bytes = burst_bytes if burst_bytes is not None else 2 * max_message_bytes

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if environ.get("HTTP_UPGRADE", "").lower() == "websocket":
            environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)
            for key in SOCKET_KEYS:
                if key in environ:
                    environ[key] = BoundedSocket(
                        environ[key], self.max_message_bytes, self.rate_bytes_s, self.burst_bytes
                    )
        return self.app(environ, start_response)
