"""Webhook delivery: deliveries per second and event-to-delivery latency at a local receiver, and
nothing lost across a kill -9 of an app process.

Run from the repository root (see bench/README.md)::

    python bench/webhook_bench.py              # full run, about 3 minutes
    python bench/webhook_bench.py --quick      # smoke run, about 35 s (figures meaningless)
    python bench/webhook_bench.py --profile var/webhook-profile   # also py-spy the app processes

Only real parts, all started and stopped here on 127.0.0.1: a Valkey server (AOF everysec, as in
production), two `gunicorn -k gevent -w 1 wsgi:app` processes in production mode with their
background tasks (each runs the webhooks' fan-out and senders), a receiver process (asyncio,
HTTP/1.1 keep-alive, one port per endpoint) that records the webhook-id and the time of every
request and keeps a sample for the signature check, and an issuer process that issues coupons
through `POST /api/campaigns/<cid>/offers/<oid>/issue` at a fixed rate (open loop) on both
servers. Ten endpoints are registered through `POST /api/webhooks/endpoints`, each for every
event type, so every coupon makes ten deliveries; a second campaign is paused and resumed
through the API meanwhile (`campaign.status_changed`). With `--source domain` the issuer calls
`Promotions.issue` itself (the code the API handler calls: the same ledger entries), so the
servers do only the webhooks' work.

1. Light: `--light-rate` coupons per second (default 80: 800 deliveries/s, a load the servers
   keep up with here) for `--light-duration` s: `light_p99_event_to_delivery_ms`.
2. Steady: `--rate` coupons per second (default 220: 2,200 deliveries/s offered) for
   `--duration` s. `deliveries_per_s` counts requests at the receiver after `--warmup` s;
   `p99_event_to_delivery_ms` is the receive time minus the event's time (the body's
   `timestamp`) over the events of that window (a backlog, when the servers cannot keep up,
   shows here). After each part the load stops until everything is delivered.
3. Kill: the steady load for `--kill-duration` s; halfway, the second server (master and worker)
   gets SIGKILL; the issuer re-sends its unanswered requests to the survivor with the same
   idempotency key. Then the bench waits until the survivor delivered everything.

`lost` = every (message, endpoint) that the system of record says must arrive — each campaign's
ledger entries that map to an event type, made after the endpoint, times the endpoints — minus
the distinct (webhook-id, endpoint) pairs received; `duplicates_after_kill` = requests received
beyond the first of their pair. Progress goes to stderr; the last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.geo_bench import cpu_percent, cpu_seconds  # noqa: E402
from bench.live_bench import finish_profile, make_setup_app, start_profile, worker_of  # noqa: E402
from bench.promo_bench import (  # noqa: E402
    CAP_HIGH,
    add_stores,
    command_counts,
    commands_per_request,
    make_accounts,
    make_campaign,
)

_STARTED = time.monotonic()
ENDPOINTS = 10
SAMPLE_EVERY = 97  # the receiver keeps every 97th request for the signature check
OK_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


def log(message: str) -> None:
    """Print a progress line to stderr."""
    print(
        f"[webhook-bench {time.monotonic() - _STARTED:6.1f}s] {message}",
        file=sys.stderr,
        flush=True,
    )


def quantile(values: list[float], q: float) -> float | None:
    """Return the q-quantile of sorted values (None when empty)."""
    if not values:
        return None
    return round(values[min(len(values) - 1, int(q * len(values)))], 1)


# -- the receiver (its own process) ----------------------------------------------------------
class _Receiving(asyncio.Protocol):
    """One keep-alive connection: parse pipelined HTTP/1.1 POSTs, record, answer 200."""

    def __init__(self, state: dict, endpoint: int) -> None:
        self.state = state
        self.endpoint = endpoint
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        records = self.state["records"]
        while True:
            he = buf.find(b"\r\n\r\n")
            if he < 0:
                break
            head = buf[:he].lower()
            i = head.find(b"\r\ncontent-length:")
            length = int(head[i + 17 : head.find(b"\r\n", i + 2)]) if i >= 0 else 0
            stop = he + 4 + length
            if len(buf) < stop:
                break
            now = time.time()
            body = buf[he + 4 : stop]
            i = head.find(b"\r\nwebhook-id:")
            msg = head[i + 13 : head.find(b"\r\n", i + 2)].strip().decode() if i >= 0 else ""
            t = body.find(b'"timestamp":"')
            stamp = body[t + 13 : body.find(b'"', t + 13)].decode() if t >= 0 else ""
            records.append((self.endpoint, msg, now, stamp))
            self.state["n"] += 1
            if self.state["n"] % SAMPLE_EVERY == 0:
                headers = {}
                for line in buf[:he].decode("latin-1").split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                self.state["samples"].append((self.endpoint, headers, body))
            self.transport.write(OK_RESPONSE)
            buf = buf[stop:]
        self.buf = buf


def receiver_main(ports: list[int], conn) -> None:
    """Listen on one port per endpoint; answer the parent's commands on `conn`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops it
    loop = asyncio.new_event_loop()
    state: dict = {"records": [], "samples": [], "n": 0}
    servers = [
        loop.run_until_complete(
            loop.create_server(
                lambda i=i: _Receiving(state, i), "127.0.0.1", port, backlog=512, reuse_address=True
            )
        )
        for i, port in enumerate(ports)
    ]
    stopped = loop.create_future()

    def command() -> None:
        cmd = conn.recv()
        if cmd == "take":  # the records since the last take
            records, state["records"] = state["records"], []
            conn.send(records)
        elif cmd == "samples":
            conn.send(state["samples"])
        elif cmd == "stop":
            if not stopped.done():
                stopped.set_result(None)

    loop.add_reader(conn.fileno(), command)
    conn.send("ready")
    loop.run_until_complete(stopped)
    for server in servers:
        server.close()
    conn.send("stopped")


class ReceiverProcess:
    """The receiver's process, and what it received so far (taken in increments)."""

    def __init__(self, ports: list[int]) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.ports = ports
        self.proc = ctx.Process(target=receiver_main, args=(ports, child), daemon=True)
        self.proc.start()
        if not self.conn.poll(30) or self.conn.recv() != "ready":
            raise RuntimeError("the receiver did not start")
        self.records: list[tuple[int, str, float, str]] = []
        self.lock = threading.Lock()

    def take(self) -> list[tuple[int, str, float, str]]:
        """Fetch new records from the receiver; return every record so far."""
        with self.lock:
            self.conn.send("take")
            self.records.extend(self.conn.recv())
            return self.records

    def samples(self) -> list:
        with self.lock:
            self.conn.send("samples")
            return self.conn.recv()

    def close(self) -> None:
        try:
            with self.lock:
                self.conn.send("stop")
                self.conn.poll(5)
        except (OSError, EOFError):
            pass
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(2)


# -- the issuer (its own process) ------------------------------------------------------------
async def _read_response(reader) -> tuple[int, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lower = head.lower()
    i = lower.find(b"\r\ncontent-length:")
    length = int(lower[i + 17 : lower.find(b"\r\n", i + 2)]) if i >= 0 else 0
    if length:
        await reader.readexactly(length)
    return int(head[9:12]), b"\r\nconnection: close" in lower


async def _issue_run(spec: dict, servers: list[tuple[str, int]], run: dict) -> dict:
    """Issue `rate` coupons a second for `duration` s (open loop) over keep-alive connections.

    A request whose connection fails goes back to the queue with the same idempotency key and
    its connection's worker stops: its server is taken as dead (the kill part).
    """
    rng = random.Random(run["seed"])
    rate, duration, tag = run["rate"], run["duration"], run["tag"]
    path = f"/api/campaigns/{spec['cid']}/offers/{spec['oid']}/issue"
    queue: asyncio.Queue = asyncio.Queue()
    statuses: Counter = Counter()
    lat_ms: list[float] = []
    errors: list[str] = []
    counts = {"resent": 0, "dead_connections": 0}
    done_scheduling = asyncio.Event()

    def request(host: str, port: int, key: str) -> bytes:
        body = json.dumps(
            {
                "shopper_id": rng.choice(spec["shoppers"]),
                "store_id": rng.choice(spec["stores"]),
                "idempotency_key": key,
            }
        ).encode()
        return (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {spec['token']}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    async def worker(host: str, port: int) -> None:
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            counts["dead_connections"] += 1
            return
        while True:
            item = await queue.get()
            if item is None:
                queue.task_done()
                break
            key, scheduled = item
            try:
                writer.write(request(host, port, key))
                status, close = await _read_response(reader)
            except (OSError, asyncio.IncompleteReadError) as exc:
                counts["resent"] += 1
                counts["dead_connections"] += 1
                if len(errors) < 5:
                    errors.append(f"{host}:{port}: {type(exc).__name__}: {exc}"[:200])
                queue.put_nowait(item)  # the same key, to another connection
                queue.task_done()
                writer.close()
                return
            statuses[str(status)] += 1
            lat_ms.append((time.time() - scheduled) * 1000.0)
            queue.task_done()
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
        writer.close()

    workers = [
        asyncio.ensure_future(worker(host, port))
        for host, port in servers
        for _ in range(spec["connections"])
    ]
    await asyncio.sleep(0.2)  # connected
    start = time.time()
    cpu0 = time.process_time()
    n = int(rate * duration)
    for k in range(n):
        at = start + k / rate
        delay = at - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((f"{tag}-{k}", at))
    done_scheduling.set()
    try:
        await asyncio.wait_for(queue.join(), timeout=60)
    except TimeoutError:
        errors.append("some requests were not answered within 60 s")
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.wait(workers, timeout=5)
    lat_ms.sort()
    return {
        "requests": n,
        "statuses": dict(statuses),
        "started": start,
        "finished": time.time(),
        "p50_ms": quantile(lat_ms, 0.5),
        "p99_ms": quantile(lat_ms, 0.99),
        "max_ms": quantile(lat_ms, 1.0),
        "errors": errors,
        "cpu_s": round(time.process_time() - cpu0, 2),
        **counts,
    }


def _domain_run(spec: dict, promos, run: dict) -> dict:
    """Issue `rate` coupons a second for `duration` s through Promotions.issue (the code the
    API's handler calls, without HTTP), from one thread, on schedule (open loop)."""
    rng = random.Random(run["seed"])
    rate, duration, tag = run["rate"], run["duration"], run["tag"]
    statuses: Counter = Counter()
    lat_ms: list[float] = []
    start = time.time()
    cpu0 = time.process_time()
    n = int(rate * duration)
    for k in range(n):
        at = start + k / rate
        delay = at - time.time()
        if delay > 0:
            time.sleep(delay)
        res = promos.issue(
            spec["cid"],
            spec["oid"],
            rng.choice(spec["shoppers"]),
            channel="manual",
            idempotency_key=f"{tag}-{k}",
            store_id=rng.choice(spec["stores"]),
            actor="bench",
        )
        statuses["201" if res.ok else res.reason] += 1
        lat_ms.append((time.time() - at) * 1000.0)
    lat_ms.sort()
    return {
        "requests": n,
        "statuses": dict(statuses),
        "started": start,
        "finished": time.time(),
        "p50_ms": quantile(lat_ms, 0.5),
        "p99_ms": quantile(lat_ms, 0.99),
        "max_ms": quantile(lat_ms, 1.0),
        "errors": [],
        "cpu_s": round(time.process_time() - cpu0, 2),
        "resent": 0,
        "dead_connections": 0,
    }


def issuer_main(spec: dict, conn) -> None:
    """Run the issuance runs the parent asks for, one at a time."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    promos = None
    if spec["source"] == "domain":
        from app.extensions import make_redis
        from bench.promo_bench import COUPON_KEYS
        from core.clock import Clock
        from geo.stores import StoreCatalog
        from promotions import CouponCodec, Promotions

        r = make_redis(spec["redis_url"])
        clock = Clock()
        promos = Promotions(r, clock, StoreCatalog(r, clock), CouponCodec(COUPON_KEYS))
    conn.send("ready")
    while True:
        run = conn.recv()
        if run is None:
            break
        servers = [tuple(s) for s in run["servers"]]
        try:
            if promos is not None:
                out = _domain_run(spec, promos, run)
            else:
                out = asyncio.run(_issue_run(spec, servers, run))
        except Exception as exc:  # report, do not hang the parent
            out = {"error": f"{type(exc).__name__}: {exc}"}
        conn.send(out)


class IssuerProcess:
    def __init__(self, spec: dict) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=issuer_main, args=(spec, child), daemon=True)
        self.proc.start()
        if not self.conn.poll(30) or self.conn.recv() != "ready":
            raise RuntimeError("the issuer did not start")

    def start(self, **run) -> None:
        self.conn.send(run)

    def result(self, timeout: float) -> dict:
        if not self.conn.poll(timeout):
            raise RuntimeError("the issuer did not finish in time")
        out = self.conn.recv()
        if "error" in out:
            raise RuntimeError(f"issuer failed: {out['error']}")
        return out

    def close(self) -> None:
        try:
            self.conn.send(None)
        except (OSError, ValueError):
            pass
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(2)


# -- the system of record --------------------------------------------------------------------
def expected_deliveries(r) -> set[tuple[int, str]]:
    """Every (endpoint index, message id) that must arrive, from Redis alone: each campaign's
    ledger entries that are events, made at or after the endpoint, times the endpoints.

    The geofence partitions and the live event stream stay empty in this bench (no fixes, no
    streams), which is checked here too.
    """
    from geo import keys as geo_keys
    from promotions import keys as promo_keys
    from webhooks import keys as wh_keys
    from webhooks.events import Subjects, from_ledger

    endpoints = sorted(
        (json.loads(raw) for raw in r.hvals(wh_keys.ENDPOINTS)), key=lambda rec: int(rec["id"][3:])
    )
    others = sum(r.xlen(s) for s in geo_keys.event_streams()) + r.xlen(wh_keys.EVENTS)
    if others:
        raise RuntimeError(f"{others} geofence or live events: the expected set would miss them")
    subjects = Subjects(b"only the ids matter here")
    out: set[tuple[int, str]] = set()
    for cid in r.zrange(promo_keys.CAMPAIGNS, 0, -1):
        for entry_id, fields in r.xrange(promo_keys.ledger(cid)):
            event = from_ledger(cid, entry_id, fields, subjects)
            if event is None:
                continue
            for i, rec in enumerate(endpoints):
                if rec["status"] == "active" and event.at >= rec["created_at"]:
                    out.add((i, event.id))
    return out


def event_time(stamp: str) -> float:
    """Parse the body's RFC 3339 timestamp."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def wait_delivered(r, receiver: ReceiverProcess, timeout: float) -> tuple[set, float, int]:
    """Wait until every expected delivery arrived (or the timeout); return the missing pairs,
    the seconds waited and the number of expected pairs.

    Called after the load stopped: the expected set is read once, the arrivals are followed
    incrementally (cheap: this process must not take the CPU the senders need), and the
    ledgers are read again once everything seemed to arrive.
    """
    t0 = time.monotonic()
    expected = expected_deliveries(r)
    got: set[tuple[int, str]] = set()
    seen = 0
    missing = set(expected)
    while True:
        records = receiver.take()
        for i, msg, _, _ in records[seen:]:
            got.add((i, msg))
            missing.discard((i, msg))
        seen = len(records)
        waited = time.monotonic() - t0
        if not missing:
            expected = expected_deliveries(r)  # nothing new in the ledgers meanwhile?
            missing = expected - got
            if not missing:
                return missing, waited, len(expected)
        if waited > timeout:
            return missing, waited, len(expected)
        time.sleep(0.25)


def backlog(r) -> dict:
    """Jobs ready or scheduled in the delivery queue, and feed entries not fanned out yet."""
    from webhooks.queue import DeliveryQueue

    return DeliveryQueue(r).backlog()


# -- the parts -------------------------------------------------------------------------------
def toggle_campaign(base: str, token: str, cid: str, stop: threading.Event, every_s: float):
    """Pause and resume a campaign through the API until stopped; return how many moves."""
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    moves = 0
    to = "paused"
    while not stop.wait(every_s):
        response = session.post(f"{base}/api/campaigns/{cid}/transition", json={"to": to})
        if response.status_code == 200:
            moves += 1
            to = "live" if to == "paused" else "paused"
    session.close()
    return moves


def part_steady(
    args, ctx: dict, label: str, rate: float, duration: float, warmup: float, profile
) -> dict:
    """Issue at a fixed rate; figures from the receiver; then wait for the queue to drain."""
    r, receiver, issuer = ctx["r"], ctx["receiver"], ctx["issuer"]
    procs = ctx["procs"]
    log(f"{label}: {rate:g} coupons/s for {duration:g}s (x {ENDPOINTS} endpoints)")
    stop = threading.Event()
    with ThreadPoolExecutor(1) as bg:
        toggles = bg.submit(
            toggle_campaign, ctx["servers"][0].url, ctx["token"], ctx["toggle_cid"], stop, 1.0
        )
        issuer.start(
            servers=ctx["targets"],
            rate=rate,
            duration=duration,
            tag=label,
            seed=args.seed + len(label),
        )
        time.sleep(warmup)
        spies = []
        if profile is not None:
            for name in ("app0", "app1"):
                out = profile / f"{name}.txt"
                spy = start_profile(procs[name].pid, out, duration - warmup)
                if spy is not None:
                    spies.append((spy, out, f"{name} (gunicorn worker)"))
        cpu0 = cpu_seconds(procs)
        commands0 = command_counts(r)
        counted0 = len(receiver.take())
        w0 = time.perf_counter()
        issued = issuer.result(duration + 90)
        wall = time.perf_counter() - w0
        cpu = cpu_percent(cpu0, cpu_seconds(procs), wall)
        commands = commands_per_request(
            commands0, command_counts(r), len(receiver.take()) - counted0
        )
        stop.set()
        moves = toggles.result()
    queued = backlog(r)
    load_end = time.time()
    missing, waited, n_expected = wait_delivered(r, receiver, args.drain_timeout)
    for spy, out, label in spies:
        finish_profile(spy, out, label)
    records = receiver.take()
    begin = issued["started"] + warmup
    end = issued["started"] + duration
    window = [rec for rec in records if begin <= rec[2] < end]
    first: dict[tuple[int, str], tuple[float, str]] = {}
    for i, msg, at, stamp in records:
        first.setdefault((i, msg), (at, stamp))
    lat = []
    worst: dict[int, float] = {}  # second of the window -> the slowest delivery of its events
    for at, stamp in first.values():
        when = event_time(stamp)
        if begin <= when < end:
            ms = (at - when) * 1000.0
            lat.append(ms)
            second = int(when - begin)
            worst[second] = max(worst.get(second, 0.0), ms)
    lat.sort()
    res = {
        "offered_deliveries_per_s": round(rate * ENDPOINTS, 1),
        "deliveries_per_s": round(len(window) / (end - begin), 1),
        "p50_ms": quantile(lat, 0.5),
        "p99_ms": quantile(lat, 0.99),
        "max_ms": quantile(lat, 1.0),
        "latency_samples": len(lat),
        "max_ms_by_second": [round(worst[k]) for k in sorted(worst)],
        "backlog_at_load_end": queued,
        "drained_s": round(waited, 2),
        "undelivered_after_drain": len(missing),
        "expected_so_far": n_expected,
        "issued": {k: issued[k] for k in ("requests", "statuses", "p50_ms", "p99_ms", "max_ms")},
        "campaign_moves": moves,
        "cpu": cpu,
        "cpu_ms_per_delivery": cpu_per_delivery(cpu, len(window) / (end - begin)),
        "redis_commands_per_delivery": commands,
        "drain_after_load_s": round(time.time() - load_end, 2),
    }
    log(
        f"{label}: {res['deliveries_per_s']} deliveries/s "
        f"(offered {res['offered_deliveries_per_s']}),"
        f" event-to-delivery p50 {res['p50_ms']} ms p99 {res['p99_ms']} ms max {res['max_ms']} ms;"
        f" issuance {issued['statuses']} p99 {issued['p99_ms']} ms; backlog at load end {queued};"
        f" drained in {waited:.1f}s; cpu {cpu}"
    )
    return res


def cpu_per_delivery(cpu: dict, per_s: float) -> dict:
    """CPU milliseconds per delivery of each process (the issuance's share included)."""
    if not per_s:
        return {}
    return {
        name: round(pct * 10.0 / per_s, 3)
        for name, pct in cpu.items()
        if name not in ("machine", "others")
    }


def pending_of(r, consumer_names: set[str]) -> dict:
    """Entries the given consumers hold pending: delivery jobs and feed (ledger) entries."""
    from promotions import keys as promo_keys
    from webhooks import keys as wh_keys
    from webhooks.queue import DeliveryQueue

    groups = [(stream, wh_keys.QUEUE_GROUP, "jobs") for stream in DeliveryQueue(r).streams()]
    groups += [
        (promo_keys.ledger(cid), wh_keys.FEED_GROUP, "feed")
        for cid in r.zrange(promo_keys.CAMPAIGNS, 0, -1)
    ]
    out = {"jobs": 0, "feed": 0}
    for stream, group, kind in groups:
        for row in r.xinfo_consumers(stream, group):
            if row["name"] in consumer_names:
                out[kind] += int(row["pending"])
    return out


def part_kill(args, ctx: dict) -> dict:
    """The same load; kill -9 the second server halfway; wait until everything arrived."""
    import socket as socket_mod

    r, receiver, issuer = ctx["r"], ctx["receiver"], ctx["issuer"]
    victim = ctx["servers"][1]
    victim_worker = ctx["procs"]["app1"]
    names = {f"{socket_mod.gethostname()}-{victim_worker.pid}"}
    before = len(receiver.take())
    log(f"kill: {args.rate:g} coupons/s for {args.kill_duration:g}s, SIGKILL halfway")
    issuer.start(
        servers=ctx["targets"],
        rate=args.rate,
        duration=args.kill_duration,
        tag="kill",
        seed=args.seed + 1,
    )
    time.sleep(args.kill_duration / 2)
    os.killpg(victim.pid, signal.SIGKILL)  # master and worker at once: nobody cleans up
    killed_at = time.time()
    time.sleep(0.3)
    pending = pending_of(r, names)
    log(f"killed {victim.url} (worker {victim_worker.pid}); it held pending {pending}")
    issued = issuer.result(args.kill_duration + 90)
    ctx["procs"].pop("app1", None)
    missing, waited, n_expected = wait_delivered(r, receiver, args.drain_timeout)
    records = receiver.take()
    last = max((rec[2] for rec in records[before:]), default=killed_at)
    res = {
        "killed_at_s": round(killed_at - issued["started"], 2),
        "pending_of_killed": pending,
        "issued": {
            k: issued[k] for k in ("requests", "statuses", "resent", "dead_connections", "errors")
        },
        "all_delivered_s_after_kill": round(last - killed_at, 2),
        "waited_after_load_s": round(waited, 2),
        "undelivered": len(missing),
        "expected": n_expected,
    }
    log(
        f"kill: issuance {issued['statuses']} (re-sent {issued['resent']}); last delivery "
        f"{res['all_delivered_s_after_kill']}s after the kill; undelivered {len(missing)} of "
        f"{n_expected}"
    )
    return res


def verify_samples(samples: list, secrets: list[str]) -> dict:
    """Check the sampled requests' signatures with the reference verifier (standardwebhooks).

    The webhook-timestamp is checked against now with the library's tolerance (5 minutes).
    """
    from standardwebhooks import Webhook, WebhookVerificationError

    ok = bad = 0
    for i, headers, body in samples:
        try:
            Webhook(secrets[i]).verify(body, headers)
            ok += 1
        except WebhookVerificationError:
            bad += 1
    return {"verified": ok, "failed": bad}


def server_warnings(servers) -> dict:
    """Count the servers' logged tracebacks and urllib3's discarded connections (a pool per
    endpoint smaller than the senders that use it at once)."""
    out: Counter = Counter()
    for s in servers:
        text = s.output(limit=10**8)
        out["tracebacks"] += text.count("Traceback")
        out["pool_full"] += text.count("Connection pool is full")
    return dict(out)


# -- main ------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--rate", type=float, default=220.0, help="coupons issued per second")
    p.add_argument("--duration", type=float, default=25.0, help="seconds of the steady part")
    p.add_argument("--warmup", type=float, default=5.0, help="seconds not counted at its start")
    p.add_argument(
        "--light-rate",
        type=float,
        default=80.0,
        help="coupons/s of the light part first (a load the servers keep up with)",
    )
    p.add_argument("--light-duration", type=float, default=15.0, help="seconds of the light part")
    p.add_argument("--kill-duration", type=float, default=20.0, help="seconds of the kill part")
    p.add_argument("--connections", type=int, default=12, help="issuer connections per server")
    p.add_argument(
        "--source",
        choices=("api", "domain"),
        default="api",
        help="issue coupons through the servers' API, or through Promotions.issue in the "
        "issuer process (the same ledger entries, without the servers' HTTP work)",
    )
    p.add_argument("--shoppers", type=int, default=200)
    p.add_argument("--stores", type=int, default=8)
    p.add_argument("--timeout-s", type=float, default=2.0, help="WEBHOOK_TIMEOUT_S")
    p.add_argument("--claim-idle-ms", type=int, default=3000, help="WEBHOOK_CLAIM_IDLE_MS")
    p.add_argument("--concurrency", type=int, default=None, help="WEBHOOK_CONCURRENCY")
    p.add_argument(
        "--drain-timeout", type=float, default=300.0, help="max wait for the queue to drain"
    )
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--profile", type=Path, default=None, help="py-spy both app processes into DIR")
    p.add_argument("--quick", action="store_true", help="a short run (figures meaningless)")
    args = p.parse_args(argv)
    if args.quick:
        args.rate = min(args.rate, 60.0)
        args.duration, args.warmup, args.kill_duration = 4.0, 1.0, 6.0
        args.light_rate, args.light_duration = min(args.light_rate, 30.0), 3.0
        args.shoppers, args.connections = min(args.shoppers, 50), min(args.connections, 4)
        args.drain_timeout = min(args.drain_timeout, 120.0)
    if args.warmup >= min(args.duration, args.light_duration):
        p.error("the warm-up must be shorter than the steady and light parts")
    if min(args.rate, args.light_rate, args.kill_duration) <= 0:
        p.error("rates and the kill part's duration must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def on_term(signum, frame):  # clean up the servers on SIGTERM as on Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    import psutil
    import redis
    import requests

    from app.redis_supervisor import EmbeddedRedis, free_port
    from tests.servers import start_gunicorn

    tmp = Path(tempfile.mkdtemp(prefix="webhook-bench-"))
    server = receiver = issuer = app = None
    servers: list = []
    booting: list = []  # futures of the servers starting while the data is set up
    result: dict = {}
    notes = {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    try:
        server = EmbeddedRedis(
            tmp / "redis",
            free_port(),
            appendonly=True,
            extra_args=["--auto-aof-rewrite-min-size", "8gb"],
        )
        server.start()
        r = redis.Redis.from_url(server.url, decode_responses=True)
        ports = [free_port() for _ in range(ENDPOINTS)]
        receiver = ReceiverProcess(ports)
        env = {
            "WEBHOOK_ALLOW_HTTP": "1",
            "WEBHOOK_ALLOW_NETS": "127.0.0.0/8",
            "WEBHOOK_TIMEOUT_S": str(args.timeout_s),
            "WEBHOOK_CLAIM_IDLE_MS": str(args.claim_idle_ms),
        }
        if args.concurrency:
            env["WEBHOOK_CONCURRENCY"] = str(args.concurrency)
        with ThreadPoolExecutor(2) as bg:
            booting += [
                bg.submit(
                    start_gunicorn,
                    server.url,
                    free_port(),
                    1,
                    {**env, "FOOTFALL_VAR_DIR": str(tmp / f"var{i}")},
                )
                for i in range(2)
            ]
            app = make_setup_app(server.url, tmp)
            stores = add_stores(app.extensions["stores"], args.stores)
            shoppers, token = make_accounts(app, args.shoppers)
            promos = app.extensions["promotions"]
            cid, oid = make_campaign(
                promos,
                "Bench: webhooks",
                total=CAP_HIGH,
                per_shopper=1_000_000,
                per_shopper_day=1_000_000,
                per_store_day=CAP_HIGH,
                budget_count=CAP_HIGH,
            )
            toggle_cid, _ = make_campaign(
                promos,
                "Bench: paused and resumed",
                total=10,
                per_shopper=1,
                per_shopper_day=1,
                per_store_day=10,
                budget_count=10,
            )
            servers = [f.result() for f in booting]
        log(
            f"valkey on {server.url}; gunicorn -k gevent -w 1 on "
            + ", ".join(s.url for s in servers)
            + f"; receiver on ports {ports[0]}..{ports[-1]}"
        )
        secrets = []
        for i, port in enumerate(ports):
            response = requests.post(
                f"{servers[i % 2].url}/api/webhooks/endpoints",
                headers={"Authorization": f"Bearer {token}"},
                json={
                    "url": f"http://127.0.0.1:{port}/hook/{i}",
                    "event_types": ["*"],
                    "description": f"bench receiver {i}",
                },
                timeout=10,
            )
            if response.status_code != 201:
                raise RuntimeError(
                    f"registering endpoint {i}: {response.status_code} {response.text}"
                )
            secrets.append(response.json()["secret"])
        log(f"{ENDPOINTS} endpoints registered through the API (every event type)")
        issuer = IssuerProcess(
            {
                "cid": cid,
                "oid": oid,
                "token": token,
                "shoppers": shoppers,
                "stores": stores,
                "connections": args.connections,
                "source": args.source,
                "redis_url": server.url,
            }
        )
        procs = {
            "app0": worker_of(servers[0]),
            "app1": worker_of(servers[1]),
            "valkey": psutil.Process(server.process.pid),
            "receiver": psutil.Process(receiver.proc.pid),
            "issuer": psutil.Process(issuer.proc.pid),
            "bench": psutil.Process(),
        }
        ctx = {
            "r": r,
            "receiver": receiver,
            "issuer": issuer,
            "procs": procs,
            "servers": servers,
            "targets": [("127.0.0.1", s.port) for s in servers],
            "token": token,
            "toggle_cid": toggle_cid,
        }
        light = part_steady(
            args, ctx, "light", args.light_rate, args.light_duration, args.warmup, None
        )
        steady = part_steady(
            args, ctx, "steady", args.rate, args.duration, args.warmup, args.profile
        )
        kill = part_kill(args, ctx)

        # The whole run: what the system of record says must have arrived, against what did.
        expected = expected_deliveries(r)
        records = receiver.take()
        got = Counter((i, msg) for i, msg, _, _ in records)
        lost = len(expected - set(got))
        unexpected = len(set(got) - expected)
        duplicates = sum(n - 1 for n in got.values())
        signatures = verify_samples(receiver.samples(), secrets)
        warnings = server_warnings(servers)
        log(
            f"whole run: {len(expected)} deliveries expected from the ledgers, {len(got)} "
            f"distinct received, lost {lost}, duplicates {duplicates}, unexpected {unexpected}; "
            f"sampled signatures {signatures}"
        )
        ledger_events = len({msg for _, msg in expected})
        result = {
            "bench": "webhooks",
            "deliveries_per_s": steady["deliveries_per_s"],
            "p99_event_to_delivery_ms": steady["p99_ms"],
            "lost": lost,
            "duplicates_after_kill": duplicates,
            "processes": len(servers),
            "endpoints": ENDPOINTS,
            "events": ledger_events,
            "deliveries_expected": len(expected),
            "deliveries_received": sum(got.values()),
            "unexpected": unexpected,
            "signatures": signatures,
            "server_warnings": warnings,
            "offered_deliveries_per_s": steady["offered_deliveries_per_s"],
            "p50_event_to_delivery_ms": steady["p50_ms"],
            "light_deliveries_per_s": light["deliveries_per_s"],
            "light_p99_event_to_delivery_ms": light["p99_ms"],
            "cpu_percent": steady["cpu"],
            "cpu_ms_per_delivery": steady["cpu_ms_per_delivery"],
            "light": light,
            "steady": steady,
            "kill": kill,
            "settings": {
                "rate": args.rate,
                "light_rate": args.light_rate,
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "kill_duration_s": args.kill_duration,
                "WEBHOOK_TIMEOUT_S": args.timeout_s,
                "WEBHOOK_CLAIM_IDLE_MS": args.claim_idle_ms,
                "WEBHOOK_CONCURRENCY": args.concurrency or 64,
            },
            "quick": args.quick,
            "machine": notes,
            "run_s": round(time.monotonic() - _STARTED, 1),
        }
    finally:
        for future in booting:  # also those started when the setup beside them failed
            if future.done() and future.exception() is None and future.result() not in servers:
                servers.append(future.result())
        for closing in (issuer, receiver):
            if closing is not None:
                closing.close()
        for s in servers:
            s.close()
        if app is not None:
            app.extensions["redis"].close()
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
