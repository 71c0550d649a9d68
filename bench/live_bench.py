"""Live-stream benchmark: fan-out to thousands of viewers, memory per connection, a coupon drop.

Real parts only, all started and stopped here on 127.0.0.1: an embedded Valkey/Redis (AOF
everysec), `gunicorn -k gevent -w 1 wsgi:app` (server A; a second one, B, for the drop), a
python-socketio host client on /host (this process) and a separate load process that holds
every viewer on /live as a raw websocket (Engine.IO 4 / Socket.IO 5 frames parsed by hand in
one selectors loop, so one process can hold thousands of connections cheaply).

    python bench/live_bench.py            # 2,000 viewers, 20 s of announcements, drop 200
    python bench/live_bench.py --quick    # 200 viewers, 5 s, drop 20 (~20 s; figures mean little)

Viewers handshake as the official socket.io-client and browsers do: half of them offer
per-message deflate (`Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits`) and
are measured first (`kb_per_connection`), the other half offer nothing
(`kb_per_connection_no_deflate_offer`); compressed frames are inflated as a browser would.

Progress goes to stderr; the last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import base64
import json
import multiprocessing as mp
import os
import platform
import selectors
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
import zlib
from array import array
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.geo_bench import cpu_percent, cpu_seconds, find_py_spy, summarize_collapsed  # noqa: E402

_STARTED = time.monotonic()
NS = "/live"
HANDSHAKE_S = 20.0
# The servers' gunicorn worker class unless --worker-class says otherwise (gunicorn.conf.py's).
WORKER_CLASS = "gunicorn_worker.EnvelopeGeventWorker"


def log(message: str) -> None:
    """Print a progress line to stderr."""
    print(
        f"[live-bench {time.monotonic() - _STARTED:6.1f}s] {message}", file=sys.stderr, flush=True
    )


def pct(values, q: float) -> float:
    """Return the q-quantile of sorted values (0.0 when empty), unrounded."""
    if not values:
        return 0.0
    return values[min(len(values) - 1, int(q * len(values)))]


# -- the load process: raw websocket viewers ---------------------------------------------------
class Viewer:
    """One /live connection: websocket upgrade, Engine.IO open, namespace connect, join."""

    __slots__ = (
        "idx",
        "token",
        "sock",
        "rbuf",
        "wbuf",
        "state",
        "port",
        "error",
        "started",
        "deflate",
        "inflater",
    )

    def __init__(self, idx: int, token: str, port: int, deflate: bool = True) -> None:
        self.idx, self.token, self.port = idx, token, port
        self.deflate = deflate  # offer per-message deflate, as browsers and socket.io-client do
        self.inflater = None  # a zlib decompressor once the server accepted the offer
        self.sock: socket.socket | None = None
        self.rbuf = bytearray()
        self.wbuf = bytearray()
        self.state = "connecting"
        self.error = None
        self.started = 0.0


def ws_frame(text: str) -> bytes:
    """A masked client text frame (mask key 0: the payload goes as is, which RFC 6455 allows)."""
    data = text.encode()
    n = len(data)
    if n < 126:
        head = struct.pack("!BB", 0x81, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x81, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
    return head + b"\0\0\0\0" + data


class Load:
    """Every viewer of the load process, in one selectors loop, driven by commands on a pipe."""

    def __init__(self, conn) -> None:
        self.conn = conn
        self.sel = selectors.DefaultSelector()
        self.sel.register(conn.fileno(), selectors.EVENT_READ, None)
        self.viewers: list[Viewer] = []
        self.stream_id = ""
        self.pending: list[Viewer] = []  # not yet started
        self.in_flight = 0
        self.max_in_flight = 64
        self.ready = 0
        self.failed: Counter = Counter()
        self.lat = array("d")
        self.received = 0
        self.first_recv = self.last_recv = 0.0
        self.claiming = False
        self.claim_sent: dict[int, float] = {}
        self.claim_lat = array("d")
        self.outcomes: Counter = Counter()
        self.other_events: Counter = Counter()
        self.negotiated = 0  # connections on which the server accepted per-message deflate
        self.done = False
        # viewers' own traffic during the fan-out: comments and likes at steady rates
        self.chat_rates = (0.0, 0.0)  # (comments/s, likes/s); (0, 0) when quiet
        self.chat_t0 = 0.0
        self.chat_sent = [0, 0]
        self.chat_next = 0  # round robin over the ready viewers
        self.chat_who = ""  # this load process in a pool: comments' texts differ
        self.chat_acks: Counter = Counter()  # "comment:ok", "comment:RATE_LIMITED", "like:ok"
        self.bytes_in = 0  # everything the servers wrote to the viewers
        self.tag = ""  # the part whose announcements are counted
        self.stale = 0  # announcements of an earlier part heard later
        # per announcement of the part: [sent, first heard, last heard] (wall clock)
        self.bursts: dict[int, list[float]] = {}

    # -- connection lifecycle --
    def start(self, v: Viewer) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.connect_ex(("127.0.0.1", v.port))
        v.sock, v.state, v.rbuf, v.wbuf = s, "connecting", bytearray(), bytearray()
        v.inflater = None
        v.started = time.monotonic()
        self.in_flight += 1
        self.sel.register(s, selectors.EVENT_WRITE, v)

    def fill(self) -> None:
        while self.pending and self.in_flight < self.max_in_flight:
            self.start(self.pending.pop())

    def fail(self, v: Viewer, why: str) -> None:
        self.failed[why] += 1
        if v.state != "ready":
            self.in_flight -= 1
        else:
            self.ready -= 1
        v.state = "failed"
        self.close(v)

    def close(self, v: Viewer) -> None:
        if v.sock is not None:
            try:
                self.sel.unregister(v.sock)
            except (KeyError, ValueError):
                pass
            v.sock.close()
            v.sock = None

    def send(self, v: Viewer, text: str) -> None:
        v.wbuf += ws_frame(text)
        self.flush(v)

    def flush(self, v: Viewer) -> None:
        try:
            n = v.sock.send(v.wbuf)
            del v.wbuf[:n]
        except BlockingIOError:
            pass
        except OSError as exc:
            self.fail(v, f"send: {exc.__class__.__name__}")
            return
        want = selectors.EVENT_READ | (selectors.EVENT_WRITE if v.wbuf else 0)
        self.sel.modify(v.sock, want, v)

    # -- protocol --
    def on_writable(self, v: Viewer) -> None:
        if v.state == "connecting":
            err = v.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self.fail(v, f"connect errno {err}")
                return
            key = base64.b64encode(os.urandom(16)).decode()
            offer = (
                "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
                if v.deflate
                else ""
            )
            v.wbuf += (
                f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{v.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\n{offer}\r\n"
            ).encode()
            v.state = "http"
        self.flush(v)

    def on_readable(self, v: Viewer) -> None:
        try:
            data = v.sock.recv(262144)
        except BlockingIOError:
            return
        except OSError as exc:
            self.fail(v, f"recv: {exc.__class__.__name__}")
            return
        if not data:
            self.fail(v, f"closed by server in state {v.state}")
            return
        now = time.time()
        self.bytes_in += len(data)
        buf = v.rbuf
        buf += data
        if v.state == "http":
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if b" 101 " not in buf[:end].split(b"\r\n", 1)[0]:
                self.fail(v, "upgrade refused")
                return
            if b"permessage-deflate" in bytes(buf[:end]).lower():
                v.inflater = zlib.decompressobj(-15)  # the server's window: 15 bits by default
                self.negotiated += 1
            del buf[: end + 4]
            v.state = "eio"
        pos, n = 0, len(buf)
        while n - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            length, head = b1 & 0x7F, 2
            if length == 126:
                if n - pos < 4:
                    break
                length, head = struct.unpack_from("!H", buf, pos + 2)[0], 4
            elif length == 127:
                if n - pos < 10:
                    break
                length, head = struct.unpack_from("!Q", buf, pos + 2)[0], 10
            if n - pos < head + length:
                break
            payload = bytes(buf[pos + head : pos + head + length])
            pos += head + length
            opcode = b0 & 0x0F
            if opcode == 1:
                if b0 & 0x40:  # RSV1: a compressed message (RFC 7692), context kept between
                    payload = v.inflater.decompress(payload + b"\x00\x00\xff\xff")
                self.on_packet(v, payload.decode(), now)
                if v.sock is None:
                    return
            elif opcode == 8:
                self.fail(v, "websocket close")
                return
            elif opcode == 9:
                v.wbuf += struct.pack("!BB", 0x8A, 0x80 | length) + b"\0\0\0\0" + payload
                self.flush(v)
        del buf[:pos]

    def on_packet(self, v: Viewer, p: str, now: float) -> None:
        if p.startswith('42/live,["announcement",'):
            data = json.loads(p[8:])[1]
            _, tag, seq, sent = data["text"].split(" ")
            if tag != self.tag:  # a straggler of an earlier part
                self.stale += 1
                return
            self.lat.append(now - float(sent))
            burst = self.bursts.get(seq)
            if burst is None:
                self.bursts[seq] = [float(sent), now, now]
            else:
                burst[2] = now
            self.received += 1
            if not self.first_recv:
                self.first_recv = now
            self.last_recv = now
        elif p.startswith('42/live,["comment",'):
            self.other_events["comment"] += 1  # counted unparsed: the most frequent event
        elif p == "2":
            self.send(v, "3")
        elif p.startswith(("43/live,3", "43/live,4")):
            ack = json.loads(p[9:])[0]
            kind = "comment" if p[8] == "3" else "like"
            self.chat_acks[f"{kind}:" + ("ok" if "error" not in ack else ack["error"]["code"])] += 1
        elif p.startswith("42/live,"):
            name, data = json.loads(p[8:])[:2]
            self.other_events[name] += 1
            if name == "drop" and self.claiming and v.state == "ready":
                self.claim_sent[v.idx] = time.time()
                self.send(v, '42/live,2["claim",' + json.dumps({"drop_id": data["id"]}) + "]")
        elif p.startswith("43/live,2"):
            ack = json.loads(p[9:])[0]
            self.outcomes[ack.get("outcome") or ack.get("error", {}).get("code", "?")] += 1
            sent = self.claim_sent.pop(v.idx, None)
            if sent is not None:
                self.claim_lat.append(now - sent)
        elif p.startswith("0{"):
            self.send(v, "40/live," + json.dumps({"token": v.token}))
        elif p.startswith("40/live,"):
            self.send(v, '42/live,1["join",' + json.dumps({"stream_id": self.stream_id}) + "]")
            v.state = "join"
        elif p.startswith("43/live,1"):
            ack = json.loads(p[9:])[0]
            if "error" in ack:
                self.fail(v, "join: " + ack["error"].get("code", "?"))
                return
            v.state = "ready"
            self.in_flight -= 1
            self.ready += 1
            self.fill()
        elif p.startswith("44/live,"):
            self.fail(v, "connect refused: " + p[8:120])

    # -- commands from the bench process --
    def command(self, msg: dict) -> None:
        cmd = msg["cmd"]
        if cmd == "connect":  # open (more) viewers on a port; reply when all are ready/failed
            self.stream_id = msg["stream_id"]
            start = len(self.viewers)
            deflate = msg.get("deflate", True)
            new = [Viewer(start + i, t, msg["port"], deflate) for i, t in enumerate(msg["tokens"])]
            self.viewers.extend(new)
            self.pending.extend(reversed(new))
            self.wait_ready(msg, time.perf_counter())
        elif cmd == "move":  # close every k-th viewer and reopen it on another port
            moved = [v for v in self.viewers[msg["offset"] :: msg["every"]] if v.state == "ready"]
            for v in moved:
                self.close(v)
                self.ready -= 1
                v.port = msg["port"]
            self.pending.extend(moved)
            self.wait_ready(msg, time.perf_counter())
        elif cmd == "reset":  # a new part: announcements tagged otherwise are not counted
            self.lat, self.received, self.first_recv, self.last_recv = array("d"), 0, 0.0, 0.0
            self.tag = msg.get("tag", "")
            self.bursts = {}
            self.conn.send({"ok": True})
        elif cmd == "stats":  # latencies raw, for LoadPool to merge
            self.conn.send(
                {
                    "received": self.received,
                    "first_recv": self.first_recv,
                    "last_recv": self.last_recv,
                    "ready": self.ready,
                    "failed": dict(self.failed),
                    "other_events": dict(self.other_events),
                    "chat_acks": dict(self.chat_acks),
                    "bytes_in": self.bytes_in,
                    "stale": self.stale,
                    "ready_by_port": {
                        str(port): n
                        for port, n in Counter(
                            v.port for v in self.viewers if v.state == "ready"
                        ).items()
                    },
                    "negotiated_deflate": self.negotiated,
                    # for a pool of load processes, which merges them (LoadPool)
                    "lat_raw": self.lat.tobytes() if msg.get("raw") else None,
                    "bursts": self.bursts if msg.get("raw") else None,
                }
            )
        elif cmd == "chatter":  # viewers comment and like at these rates until told otherwise
            self.chat_rates = (float(msg["comments_per_s"]), float(msg["likes_per_s"]))
            self.chat_who = msg.get("who", "")
            self.chat_t0, self.chat_sent = time.monotonic(), [0, 0]
            self.conn.send({"ok": True})
        elif cmd == "quiet":
            self.chat_rates = (0.0, 0.0)
            self.conn.send({"sent": {"comments": self.chat_sent[0], "likes": self.chat_sent[1]}})
        elif cmd == "arm_claims":
            self.claiming = True
            self.outcomes.clear()
            self.conn.send({"ok": True})
        elif cmd == "claims":  # latencies raw, for LoadPool to merge
            self.conn.send(
                {
                    "outcomes": dict(self.outcomes),
                    "unanswered": len(self.claim_sent),
                    "lat_raw": self.claim_lat.tobytes(),
                }
            )
        elif cmd == "stop":
            for v in self.viewers:
                self.close(v)
            self.done = True
            self.conn.send({"ok": True})

    def wait_ready(self, msg: dict, t0: float) -> None:
        self.fill()
        self._waiting = (msg, t0)

    def chatter(self) -> None:
        """Send the comments and likes due by now, each from the next ready viewer."""
        elapsed = time.monotonic() - self.chat_t0
        for kind, rate in enumerate(self.chat_rates):
            due = int(elapsed * rate) - self.chat_sent[kind]
            for _ in range(max(0, due)):
                v = self.next_ready()
                if v is None:
                    return
                self.chat_sent[kind] += 1
                if kind == 0:
                    text = f"bench comment {self.chat_who}{self.chat_sent[0]}"
                    self.send(v, f'42/live,3["comment",{{"text":"{text}"}}]')
                else:
                    self.send(v, '42/live,4["like",{"count":1}]')

    def next_ready(self) -> Viewer | None:
        for _ in range(len(self.viewers)):
            v = self.viewers[self.chat_next % len(self.viewers)]
            self.chat_next += 1
            if v.state == "ready":
                return v
        return None

    def run(self) -> None:
        self._waiting = None
        last_scan = time.monotonic()
        while not self.done:
            chatting = any(self.chat_rates)
            if chatting:
                self.chatter()
            for key, mask in self.sel.select(0.01 if chatting else 0.05):
                v = key.data
                if v is None:
                    self.command(self.conn.recv())
                    continue
                if v.sock is None:
                    continue
                if mask & selectors.EVENT_READ:
                    self.on_readable(v)
                if v.sock is not None and mask & selectors.EVENT_WRITE:
                    self.on_writable(v)
            if self._waiting and time.monotonic() - last_scan > 1.0:
                # A handshake that takes longer than HANDSHAKE_S counts as failed (e.g. a
                # gevent worker at its worker_connections limit accepts but never serves).
                last_scan = time.monotonic()
                for v in self.viewers:
                    if (
                        v.sock is not None
                        and v.state in {"connecting", "http", "eio", "join"}
                        and last_scan - v.started > HANDSHAKE_S
                    ):
                        self.fail(v, "handshake timeout")
                self.fill()
            if self._waiting and not self.pending and self.in_flight == 0:
                msg, t0 = self._waiting
                self._waiting = None
                self.conn.send(
                    {
                        "ready": self.ready,
                        "failed": dict(self.failed),
                        "seconds": round(time.perf_counter() - t0, 2),
                    }
                )


def load_main(conn) -> None:
    """Entry point of the load process."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    Load(conn).run()


class LoadProcess:
    """The load process, spoken to over a pipe."""

    def __init__(self) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(
            target=load_main, args=(child,), daemon=True, name="live-bench-load"
        )
        self.proc.start()

    def ask(self, timeout: float = 120.0, **msg) -> dict:
        self.conn.send(msg)
        if not self.conn.poll(timeout):
            raise RuntimeError(f"load process did not answer {msg['cmd']} in {timeout} s")
        return self.conn.recv()

    def close(self) -> None:
        try:
            if self.proc.is_alive():
                self.ask(timeout=10, cmd="stop")
        except Exception:
            pass
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(5)


class LoadPool:
    """Several load processes as one (`--load-processes`): viewers, comments and likes are
    spread over them, and their answers merged, latencies from the raw samples.

    One process reads the frames of a burst one after another, so with thousands of viewers
    its own queue adds to the latency it measures; more processes read a burst in parallel
    (as far as the machine's cores allow)."""

    def __init__(self, n: int) -> None:
        self.members = [LoadProcess() for _ in range(max(1, n))]

    @property
    def pids(self) -> list[int]:
        return [m.proc.pid for m in self.members]

    def each(self, msgs: list[dict], timeout: float) -> list[dict]:
        for member, msg in zip(self.members, msgs, strict=True):
            member.conn.send(msg)
        answers = []
        for member, msg in zip(self.members, msgs, strict=True):
            if not member.conn.poll(timeout):
                raise RuntimeError(f"load process did not answer {msg['cmd']} in {timeout} s")
            answers.append(member.conn.recv())
        return answers

    def ask(self, timeout: float = 120.0, **msg) -> dict:
        n = len(self.members)
        cmd = msg["cmd"]
        if cmd == "connect":
            tokens = msg["tokens"]
            msgs = [{**msg, "tokens": tokens[i::n]} for i in range(n)]
            got = self.each(msgs, timeout)
            failed: Counter = Counter()
            for g in got:
                failed.update(g["failed"])
            return {
                "ready": sum(g["ready"] for g in got),
                "failed": dict(failed),
                "seconds": max(g["seconds"] for g in got),
            }
        if cmd == "chatter":
            msgs = [
                {
                    **msg,
                    "comments_per_s": msg["comments_per_s"] / n,
                    "likes_per_s": msg["likes_per_s"] / n,
                    "who": f"{i}-",
                }
                for i in range(n)
            ]
            self.each(msgs, timeout)
            return {"ok": True}
        if cmd == "quiet":
            got = self.each([msg] * n, timeout)
            return {"sent": {k: sum(g["sent"][k] for g in got) for k in ("comments", "likes")}}
        if cmd == "stats":  # latencies and bursts only when asked for (raw=True): bulky
            return self.stats(self.each([msg] * n, timeout))
        if cmd == "claims":
            return self.claims(self.each([msg] * n, timeout))
        if cmd in {"reset", "arm_claims", "stop"}:
            self.each([msg] * n, timeout)
            return {"ok": True}
        raise ValueError(f"a pool of load processes does not do {cmd!r}")

    @staticmethod
    def merged(answers: list[dict], field: str) -> list[float]:
        samples = array("d")
        for a in answers:
            samples.frombytes(a[field] or b"")
        return sorted(samples)

    def stats(self, got: list[dict]) -> dict:
        lat = self.merged(got, "lat_raw")
        counters = {k: Counter() for k in ("failed", "other_events", "chat_acks", "ready_by_port")}
        bursts: dict[str, list[float]] = {}
        for g in got:
            for k, c in counters.items():
                c.update(g[k])
            for seq, (sent, first, last) in (g["bursts"] or {}).items():
                have = bursts.setdefault(seq, [sent, first, last])
                have[1], have[2] = min(have[1], first), max(have[2], last)
        firsts = [g["first_recv"] for g in got if g["first_recv"]]
        out = {
            k: sum(g[k] for g in got)
            for k in ("received", "ready", "bytes_in", "stale", "negotiated_deflate")
        }
        out.update({k: dict(c) for k, c in counters.items()})
        out["first_recv"] = min(firsts) if firsts else 0.0
        out["last_recv"] = max(g["last_recv"] for g in got)
        out["lat_ms"] = (
            {
                q: round(1000 * pct(lat, f), 2)
                for q, f in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))
            }
            if got[0]["lat_raw"] is not None
            else None
        )
        out["bursts"] = bursts
        return out

    def claims(self, got: list[dict]) -> dict:
        lat = self.merged(got, "lat_raw")
        outcomes: Counter = Counter()
        for g in got:
            outcomes.update(g["outcomes"])
        return {
            "outcomes": dict(outcomes),
            "unanswered": sum(g["unanswered"] for g in got),
            "p50_ms": round(1000 * pct(lat, 0.5), 2),
            "p99_ms": round(1000 * pct(lat, 0.99), 1),
            "max_ms": round(1000 * pct(lat, 1.0), 1),
        }

    def close(self) -> None:
        for member in self.members:
            member.close()


def burst_figures(bursts: dict) -> dict:
    """Per announcement of a part: when its first viewer heard it (after the host sent it),
    and how long the burst took from its first viewer to its last (p50 and p90, ms). A spread
    that shrinks with more load processes was the readers' queue, not the servers'."""
    if not bursts:
        return {}
    first = sorted(f - s for s, f, _ in bursts.values())
    spread = sorted(last - f for _, f, last in bursts.values())
    return {
        "announcements": len(bursts),
        "first_heard_ms": {
            "p50": round(1000 * pct(first, 0.5), 1),
            "p90": round(1000 * pct(first, 0.9), 1),
        },
        "first_to_last_ms": {
            "p50": round(1000 * pct(spread, 0.5), 1),
            "p90": round(1000 * pct(spread, 0.9), 1),
        },
    }


# -- setup ---------------------------------------------------------------------------------------
def make_setup_app(redis_url: str, tmp: Path, secret_key: str | None = None):
    """An in-process app on the bench's Redis that signs tokens the servers accept (theirs is
    tests.servers.SECRET_KEY unless `secret_key` says otherwise); passwords hashed as cheaply
    as argon2 allows."""
    from app import create_app
    from config import TestConfig
    from tests.servers import SECRET_KEY

    return create_app(
        TestConfig(
            REDIS_URL=redis_url,
            SECRET_KEY=secret_key or SECRET_KEY,
            VAR_DIR=tmp / "var",
            PASSWORD_HASH_TIME_COST=1,
            PASSWORD_HASH_MEMORY_KIB=64,
        )
    )


def make_sessions(app, role: str, n: int) -> list[dict]:
    """Create n accounts of a role and open a session for each."""
    accounts = app.extensions["accounts"]

    def one(i: int) -> dict:
        user = accounts.create_user(f"live-{role}-{i}@example.test", "bench-password-1", role)
        return accounts.open_session(user)

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, range(n)))


def make_stream(app, server_url: str, host: dict, drop_quantity: int) -> dict:
    """A campaign with a live_drop offer and a stream hosted by `host`, through the server."""
    import requests

    from promotions.models import CampaignIn, OfferIn

    promos = app.extensions["promotions"]
    now = time.time()
    cid = promos.campaigns.create(
        CampaignIn(name="live bench", starts_at=now - 60, ends_at=now + 3600), actor="bench"
    )["id"]
    oid = promos.campaigns.create_offer(
        cid,
        OfferIn(name="flash", kind="amount_off", amount_off_fen=1000, channels=["live_drop"]),
        actor="bench",
    )["id"]
    promos.campaigns.transition(cid, "scheduled", actor="bench")
    marketer = make_sessions(app, "marketer", 1)[0]
    response = requests.post(
        server_url + "/api/streams",
        timeout=10,
        headers={"Authorization": f"Bearer {marketer['token']}"},
        json={
            "title": "bench",
            "brand": "b",
            "playback_url": "https://v.example/x",
            "hosts": [host["user"]["id"]],
            "starts_at": now,
            "campaign_id": cid,
        },
    )
    if response.status_code != 201:
        raise RuntimeError(f"stream creation failed: {response.status_code} {response.text}")
    return {"id": response.json()["id"], "cid": cid, "oid": oid}


def worker_of(server):
    """The psutil handle of a one-worker gunicorn's worker."""
    import psutil

    master = psutil.Process(server.pid)
    deadline = time.monotonic() + 10
    while not (children := master.children()):
        if time.monotonic() > deadline:
            raise RuntimeError("no gunicorn worker")
        time.sleep(0.05)
    return children[0]


def rss_kb(proc) -> float:
    return proc.memory_info().rss / 1024


class Host:
    """The stream's host console on /host (python-socketio, websocket transport)."""

    def __init__(self, url: str, token: str, stream_id: str) -> None:
        import socketio

        self.url, self.token, self.stream_id = url, token, stream_id
        self.sio = socketio.Client(reconnection=False)
        self.acks = 0
        self.ack_lat: list[float] = []
        self.errors: Counter = Counter()
        self.reconnects = 0
        self.lock = threading.Lock()
        self.connect()

    def connect(self) -> None:
        self.sio.connect(
            self.url,
            transports=["websocket"],
            namespaces=["/host"],
            auth={"token": self.token, "stream_id": self.stream_id},
            wait_timeout=10,
        )

    def ensure_connected(self) -> None:
        """Connect again when an overloaded server dropped the console (a ping answered late)."""
        if "/host" in self.sio.namespaces:
            return
        log("the host console was disconnected; connecting again")
        try:
            self.sio.disconnect()
        except Exception:
            pass
        self.connect()
        self.reconnects += 1

    def call(self, event: str, data: dict | None = None) -> dict:
        return self.sio.call(event, data or {}, namespace="/host", timeout=30)

    def announce_at_rate(self, rate: float, seconds: float, tag: str = "-") -> dict:
        """Send `announce` with a sequence number and the send time, at a steady rate."""
        n = int(rate * seconds)
        t0 = time.perf_counter()
        late = 0.0
        for seq in range(n):
            due = t0 + seq / rate
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            else:
                late = max(late, -wait)
            sent = time.time()

            def on_ack(*ack, sent=sent):
                with self.lock:
                    self.acks += 1
                    self.ack_lat.append(time.time() - sent)
                    if ack and isinstance(ack[0], dict) and "error" in ack[0]:
                        self.errors[ack[0]["error"].get("code")] += 1

            self.sio.emit(
                "announce",
                {"text": f"bench {tag} {seq} {sent:.6f}"},
                namespace="/host",
                callback=on_ack,
            )
        return {
            "sent": n,
            "send_s": round(time.perf_counter() - t0, 3),
            "max_late_ms": round(1000 * late, 1),
        }

    def close(self) -> None:
        self.sio.disconnect()


# -- the parts ---------------------------------------------------------------------------------
def quiesce(load: LoadPool, quiet_s: float = 2.0, limit_s: float = 180.0) -> float:
    """Wait until the servers have written nothing to the viewers for `quiet_s` (a backlog of
    the previous part still draining would load the next); return the wait. Announcements of
    an earlier part that arrive later anyway are told apart by their tag (`stale`)."""
    t0 = time.monotonic()
    last = load.ask(cmd="stats")["bytes_in"]
    while time.monotonic() - t0 < limit_s:
        time.sleep(quiet_s)
        now = load.ask(cmd="stats")["bytes_in"]
        if now == last:
            break
        last = now
    return round(time.monotonic() - t0, 1)


def part_fanout(
    args,
    load: LoadPool,
    host: Host,
    procs: dict,
    worker,
    spy_dir,
    *,
    rate: float,
    duration: float,
    chatter: bool = True,
    label: str = "fanout",
) -> dict:
    """(a) announcements at a steady rate to every viewer (on every server), while viewers
    comment and like at their rates (`chatter`): delivered/s and host->viewer latency."""
    waited = quiesce(load)
    # what the previous part's viewers received in the end, its backlog drained
    previous_received = load.ask(cmd="stats")["received"]
    host.ensure_connected()
    load.ask(cmd="reset", tag=label)
    before_stats = load.ask(cmd="stats")
    expected_viewers = before_stats["ready"]
    comments_before = before_stats["other_events"].get("comment", 0)
    spy = start_profile(worker.pid, spy_dir / f"{label}_server.txt", duration) if spy_dir else None
    if chatter and (args.comments or args.likes):
        load.ask(cmd="chatter", comments_per_s=args.comments, likes_per_s=args.likes)
    before = cpu_seconds(procs)
    t0 = time.perf_counter()
    wall0 = time.time()
    host.ack_lat.clear()
    sent = host.announce_at_rate(rate, duration, tag=label)
    chat_sent = load.ask(cmd="quiet")["sent"]
    expected = sent["sent"] * expected_viewers
    deadline = time.monotonic() + args.drain
    while time.monotonic() < deadline:
        stats = load.ask(cmd="stats")
        if stats["received"] >= expected:
            break
        time.sleep(0.1)
    wall = time.perf_counter() - t0
    cpu = cpu_percent(before, cpu_seconds(procs), wall)
    stats = load.ask(cmd="stats", raw=True)
    if spy:
        finish_profile(spy, spy_dir / f"{label}_server.txt", f"server worker A ({label})")
    span = max(1e-9, stats["last_recv"] - wall0)
    delivered_per_s = stats["received"] / span
    comments_heard = stats["other_events"].get("comment", 0) - comments_before
    # every frame the servers wrote to viewers in the window: announcements and comments
    frames_per_s = (stats["received"] + comments_heard) / wall
    server_cores = sum(cpu.get(k, 0.0) for k in ("server_a", "server_b")) / 100
    ack = sorted(host.ack_lat)
    return {
        "delivered_per_s": round(delivered_per_s, 1),
        "delivered_per_server_core_s": round(delivered_per_s / server_cores, 1)
        if server_cores
        else None,
        "frames_per_server_core_s": round(frames_per_s / server_cores, 1) if server_cores else None,
        "received": stats["received"],
        "expected": expected,
        "lost": expected - stats["received"],
        "announcements": sent["sent"],
        "rate_per_s": rate,
        "viewers": expected_viewers,
        "send_s": sent["send_s"],
        "host_max_late_ms": sent["max_late_ms"],
        "span_s": round(span, 3),
        "lat_ms": stats["lat_ms"],
        "bursts": burst_figures(stats["bursts"]),
        "announce_ack_ms": {
            "p50": round(1000 * pct(ack, 0.5), 1),
            "p99": round(1000 * pct(ack, 0.99), 1),
        },
        "host_errors": dict(host.errors),
        "host_reconnects": host.reconnects,
        "quiesced_s": waited,
        "previous_part_received_in_the_end": previous_received,
        "stale": stats["stale"],
        "chatter": {
            "sent": chat_sent if chatter else {"comments": 0, "likes": 0},
            "acks": stats["chat_acks"],
            "comment_events_heard": comments_heard,
        },
        "cpu": cpu,
    }


def part_saturation(args, load: LoadPool, host: Host, procs: dict, first: dict) -> dict:
    """Raise the announcement rate (from `--rate`, x1.5 a step, no chatter) until
    host->viewer p99 exceeds `args.p99_goal_ms`; the ceiling is the delivered/s of the last
    rate that kept it, per server core used at that rate."""
    steps = []
    ceiling = None
    for i in range(args.saturation_steps):
        rate = round(args.saturation_from * 1.5**i, 2)
        fan = part_fanout(
            args,
            load,
            host,
            procs,
            None,
            None,
            rate=rate,
            duration=args.step_s,
            chatter=False,
            label=f"saturation_{rate:g}",
        )
        step = {
            "rate_per_s": rate,
            "delivered_per_s": fan["delivered_per_s"],
            "p99_ms": fan["lat_ms"]["p99"],
            "bursts": fan["bursts"],
            "lost": fan["lost"],
            "delivered_per_server_core_s": fan["delivered_per_server_core_s"],
            "quiesced_s": fan["quiesced_s"],
            "previous_part_received_in_the_end": fan["previous_part_received_in_the_end"],
            "cpu": fan["cpu"],
        }
        steps.append(step)
        log(f"saturation step: {step}")
        if fan["lat_ms"]["p99"] > args.p99_goal_ms or fan["lost"]:
            break
        ceiling = step
    return {
        "p99_goal_ms": args.p99_goal_ms,
        "ceiling": ceiling,
        "delivered_per_core_at_saturation": ceiling["delivered_per_server_core_s"]
        if ceiling
        else None,
        "steps": steps,
    }


# Connections one load process opens for the idle part (each is a file descriptor of its own).
IDLE_PER_LOAD = 15_000


def part_idle(args, load: LoadPool, server, stream: dict, tokens: list[str], fd_limit: int) -> dict:
    """(d) hold `args.idle_connections` joined, idle viewers on server A (tokens reused, spread
    over extra load processes of at most IDLE_PER_LOAD each) and time `/healthz` meanwhile.

    The worker needs a descriptor per connection plus its reserve (core.fdlimit.FD_RESERVE):
    past its open-file limit it can no longer accept, `/healthz` included. So no more than
    the limit allows is asked for, and `fd_limited` says when that capped the figure."""
    import requests

    from core.fdlimit import FD_RESERVE

    cap = fd_limit - FD_RESERVE
    target = min(args.idle_connections, cap)
    if target < args.idle_connections:
        log(f"the open-file limit {fd_limit} lets the worker hold at most {cap}: asking {target}")
    have = load.ask(cmd="stats")["ready_by_port"].get(str(server.port), 0)
    want = max(0, target - have)
    extra = [LoadProcess() for _ in range(-(-want // IDLE_PER_LOAD))]
    t0 = time.perf_counter()
    failed: Counter = Counter()
    try:
        for i, helper in enumerate(extra):
            n = min(IDLE_PER_LOAD, want - i * IDLE_PER_LOAD)
            got = helper.ask(
                cmd="connect",
                port=server.port,
                stream_id=stream["id"],
                tokens=[tokens[(i * IDLE_PER_LOAD + j) % len(tokens)] for j in range(n)],
                deflate=False,
                timeout=120 + n / 20,
            )
            failed.update(got["failed"])
            log(f"idle viewers, load process {i + 1}/{len(extra)}: {got}")
        connect_s = time.perf_counter() - t0
        time.sleep(args.idle)
        on_a = sum(
            helper.ask(cmd="stats")["ready_by_port"].get(str(server.port), 0)
            for helper in [load, *extra]
        )
        lat = []
        with requests.Session() as http:
            for _ in range(args.healthz_requests):
                t = time.perf_counter()
                response = http.get(server.url + "/healthz", timeout=10)
                lat.append(time.perf_counter() - t)
                if response.status_code != 200:
                    raise RuntimeError(f"/healthz answered {response.status_code}")
                time.sleep(0.02)
    finally:
        for helper in extra:
            helper.close()
    lat.sort()
    return {
        "max_idle_per_process": on_a,
        "asked": args.idle_connections,
        "fd_limit": fd_limit,
        "fd_limited": target < args.idle_connections,
        "connect_s": round(connect_s, 1),
        "connect_failed": dict(failed),
        "healthz_ms": {
            "p50": round(1000 * pct(lat, 0.5), 1),
            "p99": round(1000 * pct(lat, 0.99), 1),
            "max": round(1000 * pct(lat, 1.0), 1),
        },
    }


def part_drop(args, load: LoadPool, host: Host, r, stream: dict, servers: list) -> dict:
    """(c) a drop of N coupons that every viewer claims as soon as it hears `drop`."""
    from promotions import keys

    moved = None  # the viewers are on both servers already: claims land on both
    quiesce(load)
    previous_received = load.ask(cmd="stats")["received"]
    host.ensure_connected()
    load.ask(cmd="arm_claims")
    t0 = time.perf_counter()
    drop = host.call("drop", {"offer_id": stream["oid"], "quantity": args.drop, "window_s": 120})
    if "error" in drop:
        raise RuntimeError(f"drop refused: {drop}")
    claimants = load.ask(cmd="stats")["ready"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        claims = load.ask(cmd="claims")
        if sum(claims["outcomes"].values()) >= claimants:
            break
        time.sleep(0.1)
    wall = time.perf_counter() - t0
    claims = load.ask(cmd="claims")
    won = claims["outcomes"].get("won", 0)
    issued = int(r.hget(keys.offer(stream["cid"], stream["oid"]), "issued") or 0)
    return {
        "drop_claimed": f"{won}/{args.drop}",
        "oversell": max(0, won - args.drop, issued - args.drop),
        "issued_in_redis": issued,
        "claimants": claimants,
        "outcomes": claims["outcomes"],
        "unanswered": claims["unanswered"],
        "claim_p50_ms": claims["p50_ms"],
        "claim_p99_ms": claims["p99_ms"],
        "claim_max_ms": claims["max_ms"],
        "all_answered_s": round(wall, 2),
        "servers": len(servers),
        "move": moved,
        "previous_part_received_in_the_end": previous_received,
    }


def start_profile(pid: int, out: Path, seconds: float):
    import subprocess

    spy = find_py_spy()
    if not spy:
        log("py-spy not found: no profile")
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [
            spy,
            "record",
            "-p",
            str(pid),
            "-d",
            str(int(seconds) + 1),
            "-r",
            "200",
            "-f",
            "raw",
            "-o",
            str(out),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def finish_profile(spy, out: Path, label: str) -> None:
    try:
        spy.wait(30)
    except Exception:
        spy.kill()
        return
    if out.exists():
        log(f"profile of {label} ({out}):\n{summarize_collapsed(out)}")


# -- main ----------------------------------------------------------------------------------------
def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke run: 2 x 100 viewers, 5 s, drop 20")
    p.add_argument(
        "--viewers", type=int, default=2000, help="viewers per server process (two processes)"
    )
    p.add_argument("--rate", type=float, default=10.0, help="announcements per second")
    p.add_argument("--duration", type=float, default=20.0, help="seconds of announcements")
    p.add_argument("--comments", type=float, default=50.0, help="viewers' comments per second")
    p.add_argument("--likes", type=float, default=50.0, help="viewers' likes per second")
    p.add_argument("--drain", type=float, default=10.0, help="max wait for stragglers")
    p.add_argument("--idle", type=float, default=3.0, help="idle seconds before the RSS")
    p.add_argument("--drop", type=int, default=200, help="coupons in the drop")
    p.add_argument("--one-server", action="store_true", help="every viewer on server A")
    p.add_argument(
        "--saturation-steps",
        type=int,
        default=6,
        help="announcement rates tried (--rate, then x1.5 each) while p99 holds (0: none)",
    )
    p.add_argument("--step-s", type=float, default=5.0, help="seconds per saturation step")
    p.add_argument(
        "--saturation-from", type=float, default=2.5, help="the first rate of the saturation ramp"
    )
    p.add_argument("--p99-goal-ms", type=float, default=250.0)
    p.add_argument(
        "--idle-connections",
        type=int,
        default=0,
        help="also hold this many idle viewers on server A and time /healthz (0: skip)",
    )
    p.add_argument("--healthz-requests", type=int, default=50)
    p.add_argument(
        "--load-processes",
        type=int,
        default=1,
        help="viewers, comments and likes spread over this many load processes",
    )
    p.add_argument("--profile", type=Path, default=None, help="py-spy the worker into DIR")
    p.add_argument(
        "--worker-class",
        default=WORKER_CLASS,
        help="gunicorn worker class of the servers (default: gunicorn.conf.py's); e.g. "
        "geventwebsocket.gunicorn.workers.GeventWebSocketWorker with gevent-websocket installed",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.viewers, args.duration, args.drop, args.idle, args.drain = 100, 5.0, 20, 1.0, 5.0
        args.comments, args.likes = min(args.comments, 10.0), min(args.likes, 10.0)
        args.saturation_steps, args.step_s = min(args.saturation_steps, 1), 1.0
        args.saturation_from = args.rate
    return args


def raise_fd_limit(wanted: int) -> tuple[int, int]:
    """Raise this process's open-file limit (soft and, where allowed, hard) to `wanted`; the
    servers and the load process started afterwards inherit it."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < wanted:
        try:  # raising the hard limit needs privileges (CAP_SYS_RESOURCE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
        except (ValueError, OSError):
            log(f"open-file hard limit {hard} < {wanted} and cannot be raised here")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def main(argv=None) -> int:
    args = parse_args(argv)

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    import psutil
    import redis

    from app.redis_supervisor import EmbeddedRedis, free_port
    from tests.servers import start_gunicorn

    n_servers = 1 if args.one_server else 2
    per_server = args.viewers if n_servers > 1 else args.viewers * 2
    connections = max(per_server, args.idle_connections) + 500
    fd_limit = raise_fd_limit(connections + 2000)
    tmp = Path(tempfile.mkdtemp(prefix="live-bench-"))
    server = load = host = app = None
    servers: list = []
    t_start = time.perf_counter()
    try:
        server = EmbeddedRedis(
            tmp / "redis",
            free_port(),
            appendonly=True,
            extra_args=["--auto-aof-rewrite-min-size", "8gb"],
        )
        server.start()
        r = redis.Redis.from_url(server.url, decode_responses=True)
        log(f"redis on {server.url}; open-file limit {fd_limit}")
        load = LoadPool(args.load_processes)
        with ThreadPoolExecutor(3) as bg:
            booting = [
                bg.submit(
                    start_gunicorn,
                    server.url,
                    free_port(),
                    1,
                    {
                        "FOOTFALL_VAR_DIR": str(tmp / f"var{i}"),
                        # gunicorn's default (1000) would leave viewers unserved
                        "GUNICORN_WORKER_CONNECTIONS": str(connections),
                    },
                    worker_class=args.worker_class,
                )
                for i in range(n_servers)
            ]
            app = make_setup_app(server.url, tmp)
            t = time.perf_counter()
            host_session = make_sessions(app, "host", 1)[0]
            viewers = make_sessions(app, "shopper", 2 * args.viewers)
            log(f"{len(viewers)} shopper sessions in {time.perf_counter() - t:.1f}s")
            servers = [f.result() for f in booting]
        log(f"gunicorn -k {args.worker_class} -w 1: " + ", ".join(s.url for s in servers))
        a = servers[0]
        worker = worker_of(a)
        workers = [worker] + [worker_of(s) for s in servers[1:]]
        procs = {
            "server_a": worker,
            **{
                "load" if i == 0 else f"load_{i + 1}": psutil.Process(pid)
                for i, pid in enumerate(load.pids)
            },
            "bench": psutil.Process(),
            "redis": psutil.Process(server.process.pid),
        }
        if len(servers) > 1:
            procs["server_b"] = workers[1]
        stream = make_stream(app, a.url, host_session, args.drop)
        host = Host(a.url, host_session["token"], stream["id"])
        if host.call("start") != {"status": "live"}:
            raise RuntimeError("the stream did not go live")
        # (b) memory per idle connection: the viewers that offer per-message deflate (the
        # official client's default handshake) on A, then those that offer nothing (on B, or
        # on A again with --one-server); each worker's RSS growth / its new connections.
        time.sleep(0.5)
        half = len(viewers) // 2
        groups = [(True, viewers[:half], servers[0]), (False, viewers[half:], servers[-1])]
        rss = {id(w): rss_kb(w) for w in workers}
        rss_mb = []
        memory_parts = []
        for deflate, group, target in groups:
            target_worker = workers[servers.index(target)]
            before_rss = rss_kb(target_worker)
            before_ready = load.ask(cmd="stats")["ready"]
            got = load.ask(
                cmd="connect",
                port=target.port,
                stream_id=stream["id"],
                tokens=[v["token"] for v in group],
                deflate=deflate,
                timeout=60 + len(group) / 20,
            )
            log(f"connected and joined (deflate offered: {deflate}) on {target.url}: {got}")
            time.sleep(args.idle)
            after_rss = rss_kb(target_worker)
            rss_mb.append([round(before_rss / 1024, 1), round(after_rss / 1024, 1)])
            joined = got["ready"] - before_ready
            memory_parts.append(
                {
                    "deflate_offered": deflate,
                    "server": "A" if target is servers[0] else "B",
                    "connections": joined,
                    "kb_per_connection": round((after_rss - before_rss) / joined, 1)
                    if joined
                    else 0,
                    "connect_s": got["seconds"],
                    "connect_failed": got["failed"],
                }
            )
        del rss
        n = got["ready"]
        if n != len(viewers):
            log(f"WARNING: only {n} of {len(viewers)} viewers are in")
        negotiated = load.ask(cmd="stats")["negotiated_deflate"]
        kb_per_conn = memory_parts[0]["kb_per_connection"]
        log(
            f"worker RSS {rss_mb} MB: {kb_per_conn:.1f} KB per connection offering deflate "
            f"(negotiated on {negotiated}), "
            f"{memory_parts[1]['kb_per_connection']:.1f} KB without the offer"
        )
        # (a) fan-out, with the viewers' comments and likes
        log(
            f"announcing {args.rate:g}/s for {args.duration:g}s to {n} viewers on "
            f"{len(servers)} servers; viewers comment {args.comments:g}/s, like {args.likes:g}/s"
        )
        fan = part_fanout(
            args, load, host, procs, worker, args.profile, rate=args.rate, duration=args.duration
        )
        log(
            f"fan-out: {fan['delivered_per_s']} delivered/s, latency {fan['lat_ms']}, "
            f"lost {fan['lost']}, chatter {fan['chatter']}, cpu {fan['cpu']}"
        )
        saturation = part_saturation(args, load, host, procs, fan)
        if saturation["steps"]:  # the fan-out's late deliveries, counted before the next reset
            fan["received_in_the_end"] = saturation["steps"][0]["previous_part_received_in_the_end"]
        log(f"saturation: ceiling {saturation['ceiling']}")
        # (c) the drop
        drop = part_drop(args, load, host, r, stream, servers)
        log(
            f"drop: {drop['drop_claimed']} won, issued in Redis {drop['issued_in_redis']}, "
            f"outcomes {drop['outcomes']}"
        )
        fan.setdefault("received_in_the_end", drop["previous_part_received_in_the_end"])
        fan["lost_in_the_end"] = fan["expected"] - fan["received_in_the_end"]
        idle = None
        if args.idle_connections:
            log(f"holding {args.idle_connections} idle viewers on {a.url}")
            idle = part_idle(args, load, a, stream, [v["token"] for v in viewers], fd_limit[0])
            idle["rss_mb"] = round(rss_kb(worker) / 1024, 1)
            log(f"idle: {idle}")
        result = {
            "bench": "live",
            "viewers": n,
            "delivered_per_s": fan["delivered_per_s"],
            "p50_ms": fan["lat_ms"]["p50"],
            "p99_ms": fan["lat_ms"]["p99"],
            "kb_per_connection": round(kb_per_conn, 1),
            "kb_per_connection_no_deflate_offer": memory_parts[1]["kb_per_connection"],
            "drop_claimed": drop["drop_claimed"],
            "oversell": drop["oversell"],
            "delivered_per_server_core_s": fan["delivered_per_server_core_s"],
            "delivered_per_core_at_saturation": saturation["delivered_per_core_at_saturation"],
            "max_idle_per_process": idle["max_idle_per_process"] if idle else None,
            "healthz_p99_ms_while_idle": idle["healthz_ms"]["p99"] if idle else None,
            "viewers_per_process": args.viewers if n_servers > 1 else n,
            "load_processes": args.load_processes,
            "servers": n_servers,
            "quick": args.quick,
            "worker_class": args.worker_class,
            "fanout": fan,
            "saturation": saturation,
            "idle": idle,
            "memory": {
                "rss_mb": rss_mb,
                "connections": n,
                "parts": memory_parts,
                "negotiated_deflate": negotiated,
            },
            "drop": drop,
            "machine": {
                "cores": os.cpu_count(),
                "python": platform.python_version(),
                "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
                "open_file_limit": list(fd_limit),
            },
            "wall_s": round(time.perf_counter() - t_start, 1),
        }
        print(json.dumps(result))
        return 0
    finally:
        for closing in (host, load):
            if closing is not None:
                try:
                    closing.close()
                except Exception:
                    pass
        for s in servers:
            s.close()
        if app is not None:
            try:
                app.extensions["redis"].close()
            except Exception:
                pass
        if server is not None:
            server.stop()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
