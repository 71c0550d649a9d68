"""What a socket client can make a real server (gunicorn + gevent) buffer: bounded.

A raw websocket client (websocket-client) speaks Engine.IO/Socket.IO by hand, so it can send
what no well-behaved client sends; the server's memory is read from /proc (VmHWM: the peak
resident size of the worker, which only grows).
"""

from __future__ import annotations

import json
import os
import socket
import struct
from collections.abc import Iterator

import pytest
import websocket

from tests.servers import ServerProcess, start_gunicorn, wait_for
from tests.test_processes import make_helper_app, session_for

MB = 1024 * 1024


@pytest.fixture(scope="module")
def server(redis_server) -> Iterator[ServerProcess]:
    process = start_gunicorn(redis_server)
    try:
        yield process
    finally:
        process.close()


@pytest.fixture(scope="module")
def viewer_token(redis_server, tmp_path_factory) -> str:
    helper = make_helper_app(redis_server, tmp_path_factory.mktemp("limits"))
    return session_for(helper, "shopper")["token"]


def worker_pid(server: ServerProcess) -> int:
    with open(f"/proc/{server.pid}/task/{server.pid}/children") as fh:
        children = fh.read().split()
    assert len(children) == 1, children
    return int(children[0])


def peak_rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


class RawSocketIO:
    """Engine.IO v4 over a websocket, by hand, connected to one namespace."""

    def __init__(self, server: ServerProcess, token: str, namespace: str = "/live") -> None:
        self.namespace = namespace
        self.ws = websocket.create_connection(
            f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket", timeout=10
        )
        assert self.ws.recv().startswith("0{")  # engine.io open
        self.ws.send(f"40{namespace}," + json.dumps({"token": token}))
        assert self.recv_packet().startswith(f"0{namespace},")  # socket.io connect
        self.next_id = 0

    def recv_packet(self) -> str:
        """Return the next Socket.IO packet (engine.io pings answered on the way)."""
        while True:
            message = self.ws.recv()
            if message == "2":
                self.ws.send("3")
                continue
            assert message.startswith("4"), message
            return message[1:]

    def call(self, event: str, payload: object) -> list:
        """Send an event with an ack id; return the ack's arguments."""
        self.next_id += 1
        self.ws.send(f"42{self.namespace},{self.next_id}" + json.dumps([event, payload]))
        prefix = f"3{self.namespace},{self.next_id}"
        while True:
            packet = self.recv_packet()
            if packet.startswith(prefix):
                return json.loads(packet[len(prefix) :])

    def events(self) -> Iterator[tuple[str, object]]:
        """Yield the server's events (name, payload) until the connection closes."""
        prefix = f"2{self.namespace},"
        while True:
            try:
                packet = self.recv_packet()
            except (websocket.WebSocketConnectionClosedException, ConnectionError):
                return
            if packet.startswith(prefix):
                name, *args = json.loads(packet[len(prefix) :])
                yield name, args[0] if args else None
            elif packet.startswith(f"1{self.namespace}"):
                yield "disconnect", None

    def close(self) -> None:
        self.ws.close()


def stream_raw(sock: socket.socket, header: bytes, total: int, chunk: int = MB) -> int:
    """Send a frame header, then `total` payload bytes, until the server stops reading; return
    how many payload bytes went out."""
    sock.settimeout(5)
    sent = 0
    try:
        sock.sendall(header)
        block = b"\0" * chunk
        while sent < total:
            sock.sendall(block)
            sent += chunk
    except (BrokenPipeError, ConnectionResetError, TimeoutError):
        pass
    return sent


def frame_header(opcode: int, length: int, fin: bool = True) -> bytes:
    """A client frame header with a 64-bit length and a zero mask (payload sent as is)."""
    return (
        bytes([(0x80 if fin else 0) | opcode, 0x80 | 127]) + struct.pack("!Q", length) + b"\0\0\0\0"
    )


def test_a_binary_event_is_refused_with_a_reason_and_the_connection_closed(server, viewer_token):
    client = RawSocketIO(server, viewer_token)
    pid = worker_pid(server)
    before = peak_rss_kb(pid)
    try:
        # A binary event announcing 9,999,999 attachments, then 64 MB of attachment frames.
        client.ws.send('459999999-/live,["join",{"_placeholder":true,"num":0}]')
        received = []
        for name, payload in client.events():
            received.append((name, payload))
            if name == "disconnect":
                break
        assert received[0][0] == "error", received
        assert received[0][1]["error"]["code"] == "binary_not_accepted"
        assert received[-1][0] == "disconnect"
        sent = 0
        for _ in range(64):
            try:
                client.ws.send_binary(b"\0" * MB)
                sent += 1
            except (
                BrokenPipeError,
                ConnectionResetError,
                websocket.WebSocketConnectionClosedException,
            ):
                break
        assert sent < 64, "the server kept reading attachments of a refused event"
    finally:
        client.close()
    assert peak_rss_kb(pid) - before < 16 * 1024


def test_a_large_text_event_gets_payload_too_large_and_the_connection_stays(server, viewer_token):
    client = RawSocketIO(server, viewer_token)
    try:
        [ack] = client.call("join", {"stream_id": "1", "blob": "x" * 1_000_000})
        assert ack["error"]["code"] == "payload_too_large", ack
        assert ack["error"]["field"] == "payload"
        [ack] = client.call("leave", None)
        assert ack["error"]["code"] == "NOT_JOINED"  # the same connection answers
    finally:
        client.close()


def test_a_message_over_the_transport_limit_closes_before_it_is_buffered(server, viewer_token):
    client = RawSocketIO(server, viewer_token)
    pid = worker_pid(server)
    before = peak_rss_kb(pid)
    try:
        # One 100 MB text message at full speed.
        sent = stream_raw(client.ws.sock, frame_header(0x1, 100 * MB), 100 * MB)
        assert sent < 100 * MB, "the server read the whole message"
        closing = client.ws.sock.recv(64)
        # A close frame 1009 (message too big) with its reason, or the socket already reset.
        assert closing == b"" or (closing[0] == 0x88 and closing[2:4] == (1009).to_bytes(2, "big"))
    except ConnectionResetError:
        pass
    finally:
        client.ws.sock.close()
    assert peak_rss_kb(pid) - before < 16 * 1024
    wait_for(lambda: server.running(), 5, "the server still up")


def test_a_fast_sender_of_small_messages_gets_backpressure(redis_server, viewer_token):
    # A server that reads 1 KB/s per connection after a burst of 2 MB: a sender of 100 MB
    # finds its writes blocked once the burst and the kernel's buffers are full.
    slow = start_gunicorn(redis_server, extra_env={"SOCKET_MAX_RATE": "1024"})
    try:
        client = RawSocketIO(slow, viewer_token)
        pid = worker_pid(slow)
        before = peak_rss_kb(pid)
        message = b"42/live," + json.dumps(["no_such_event", {"x": "y" * 8000}]).encode()
        frame = bytes([0x81, 0x80 | 126]) + struct.pack("!H", len(message)) + b"\0\0\0\0" + message
        sock = client.ws.sock
        sock.settimeout(5)
        sent, blocked = 0, False
        try:
            while sent < 100 * MB:
                sock.sendall(frame)
                sent += len(frame)
        except TimeoutError:
            blocked = True
        assert blocked and sent < 100 * MB
        sock.close()
        assert peak_rss_kb(pid) - before < 32 * 1024
        assert os.path.exists(f"/proc/{pid}")
    finally:
        slow.close()
