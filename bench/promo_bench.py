"""Coupon issuance throughput: Promotions.issue in processes, the raw ISSUE script, HTTP, oversell.

Run from the repository root (see bench/README.md)::

    python bench/promo_bench.py               # full run, about 1 minute
    python bench/promo_bench.py --quick       # smoke run, about 15 s (figures meaningless)
    python bench/promo_bench.py --profile var/promo-profile   # also py-spy the hot processes

Everything runs against real parts started here: a Valkey server (temp dir, free port,
127.0.0.1, AOF on with fsync every second as in production), shopper and marketer accounts made
through an in-process app, a live campaign whose offer has every cap set (high enough not to be
hit), 8 worker processes with their own Redis client, Promotions object and real clock, and real
`gunicorn -k gevent wsgi:app` servers for the HTTP figures and the oversell check.

Progress goes to stderr; the last line of stdout is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.geo_bench import cpu_percent, cpu_seconds, find_py_spy, summarize_collapsed  # noqa: E402

PASSWORD = "bench-password-1"
BRAND = "Acme"
COUPON_KEYS = [("bench", b"bench-coupon-signing-key-0123456789")]
CAP_HIGH = 1_000_000_000  # caps that are checked on every issuance but never reached
VALUE_FEN = 2000  # one coupon: 20 yuan off

_STARTED = time.monotonic()


def log(message: str) -> None:
    """Print a progress line to stderr."""
    print(
        f"[promo-bench {time.monotonic() - _STARTED:6.1f}s] {message}", file=sys.stderr, flush=True
    )


def pct(values: list[float], q: float) -> float:
    """Return the q-quantile of sorted values (0.0 when empty)."""
    if not values:
        return 0.0
    return round(values[min(len(values) - 1, int(q * len(values)))], 2)


# -- setup: stores, accounts, campaigns ------------------------------------------------------
def make_setup_app(redis_url: str, tmp: Path):
    """Build an in-process app on the bench's Redis that signs tokens the servers accept."""
    from app import create_app
    from config import TestConfig
    from tests.servers import SECRET_KEY

    # The passwords are never checked here: hash them as cheaply as argon2 allows.
    return create_app(
        TestConfig(
            REDIS_URL=redis_url,
            SECRET_KEY=SECRET_KEY,
            VAR_DIR=tmp / "var",
            PASSWORD_HASH_TIME_COST=1,
            PASSWORD_HASH_MEMORY_KIB=64,
        )
    )


def add_stores(catalog, n: int) -> list[str]:
    """Create n stores of one brand along a street in Shanghai; return their ids."""
    ids = []
    for i in range(n):
        sid = f"{BRAND.lower()}-{i}"
        catalog.create(
            {
                "id": sid,
                "name": f"{BRAND} {i}",
                "brand": BRAND,
                "city": "Shanghai",
                "lat": 31.2400 + i * 0.002,
                "lon": 121.4800,
                "fence": {"type": "circle", "radius_m": 80},
            }
        )
        ids.append(sid)
    return ids


def make_accounts(app, n: int) -> tuple[list[str], str]:
    """Create n shopper accounts and one marketer with a session; return (ids, token)."""
    accounts = app.extensions["accounts"]
    marketer = accounts.create_user("bench-marketer@example.test", PASSWORD, "marketer")
    token = accounts.open_session(marketer)["token"]
    with ThreadPoolExecutor(4) as pool:  # two round trips each: overlap them a little
        users = list(
            pool.map(
                lambda i: accounts.create_user(
                    f"bench-shopper-{i}@example.test", PASSWORD, "shopper"
                ),
                range(n),
            )
        )
    return [u["id"] for u in users], token


def make_campaign(
    promos,
    name: str,
    *,
    total: int,
    per_shopper: int,
    per_shopper_day: int,
    per_store_day: int,
    budget_count: int,
) -> tuple[str, str]:
    """Create a live campaign (started an hour ago) with one offer with every cap set."""
    from promotions.models import MAX_FEN, CampaignIn, OfferIn

    now = time.time()
    campaign = promos.campaigns.create(
        CampaignIn(
            name=name,
            starts_at=now - 3600,
            ends_at=now + 30 * 86_400,
            timezone="Asia/Shanghai",
            targets={"brands": [BRAND]},
            budget={"count": budget_count, "value_fen": min(MAX_FEN, 2 * budget_count * VALUE_FEN)},
        ),
        actor="bench",
    )
    cid = campaign["id"]
    offer = promos.campaigns.create_offer(
        cid,
        OfferIn(
            name="20 off",
            kind="amount_off",
            amount_off_fen=VALUE_FEN,
            channels=["manual", "visit", "game", "live_drop"],
            caps={
                "total": total,
                "value_fen": min(MAX_FEN, 2 * total * VALUE_FEN),
                "per_shopper": per_shopper,
                "per_shopper_day": per_shopper_day,
                "per_store_day": per_store_day,
            },
        ),
        actor="bench",
    )
    promos.campaigns.transition(cid, "scheduled", actor="bench")  # live: its start has passed
    status = promos.campaigns.get(cid)["status"]
    if status != "live":
        raise RuntimeError(f"campaign {cid} is {status}, not live")
    return cid, offer["id"]


# -- Redis server figures --------------------------------------------------------------------
def evalsha_stats(r) -> tuple[int, int]:
    """Return (calls, usec) of EVALSHA from INFO commandstats."""
    stats = r.info("commandstats").get("cmdstat_evalsha") or {}
    return int(stats.get("calls", 0)), int(stats.get("usec", 0))


def command_counts(r) -> dict[str, int]:
    """Return calls per command from INFO commandstats (script-internal calls included)."""
    return {name: calls for name, (calls, _) in command_stats(r).items()}


def command_stats(r) -> dict[str, tuple[int, int]]:
    """Return (calls, usec) per command from INFO commandstats."""
    return {
        name.removeprefix("cmdstat_"): (int(v.get("calls", 0)), int(v.get("usec", 0)))
        for name, v in r.info("commandstats").items()
    }


def script_breakdown(before: dict, after: dict) -> dict:
    """Split the server time of one EVALSHA into the commands it ran (usec per script call).

    `lua` is what is left: running the Lua code itself (argument handling, string building,
    cjson) and calling into the server.
    """
    delta = {
        k: (c - before.get(k, (0, 0))[0], u - before.get(k, (0, 0))[1])
        for k, (c, u) in after.items()
    }
    scripts = delta.get("evalsha", (0, 0))
    if not scripts[0]:
        return {}
    # Other clients' commands (the idle servers' XREADGROUP, INFO) are left out.
    inner = {
        k: (c, u)
        for k, (c, u) in delta.items()
        if k not in ("evalsha", "info") and c >= 0.5 * scripts[0]
    }
    out = {
        k: {"calls": round(c / scripts[0], 2), "usec": round(u / scripts[0], 2)}
        for k, (c, u) in sorted(inner.items(), key=lambda kv: -kv[1][1])
    }
    total = scripts[1] / scripts[0]
    out["lua"] = {"usec": round(total - sum(u for _, u in inner.values()) / scripts[0], 2)}
    out["total"] = {"usec": round(total, 2)}
    return out


def commands_per_request(before: dict[str, int], after: dict[str, int], requests: int) -> dict:
    """Return the commands the server ran per request in a window (most frequent first).

    Commands run inside a script (HINCRBY, XADD ...) are counted too; EVALSHA is the script.
    """
    if not requests:
        return {}
    delta = {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0) > 0}
    return {
        k: round(v / requests, 2)
        for k, v in sorted(delta.items(), key=lambda kv: -kv[1])
        if v / requests >= 0.05
    }


def evalsha_delta(before: tuple[int, int], after: tuple[int, int]) -> dict:
    """Return EVALSHA calls and server time per call between two snapshots."""
    calls, usec = after[0] - before[0], after[1] - before[1]
    return {"calls": calls, "usec_per_call": round(usec / calls, 2) if calls else None}


def aof_rewrites(r) -> int:
    """Return how many AOF rewrites the server has done (each forks a child that copies it)."""
    return int(r.info("persistence").get("aof_rewrites", 0))


def settle(r, timeout: float = 120.0) -> None:
    """Wait until no AOF rewrite runs or waits, so one part's writes do not slow the next.

    The server rewrites its AOF by itself (as in production) each time the file doubled; the
    rewrite forks a child that takes a core, and the copy-on-write faults slow the server.
    """
    t = time.monotonic()
    while True:
        info = r.info("persistence")
        if not info.get("aof_rewrite_in_progress") and not info.get("aof_rewrite_scheduled"):
            break
        if time.monotonic() - t > timeout:
            log("WARNING: an AOF rewrite is still running")
            break
        time.sleep(0.1)
    waited = time.monotonic() - t
    if waited > 0.05:
        log(f"waited {waited:.1f}s for an AOF rewrite to finish")


# -- the worker processes --------------------------------------------------------------------
def pool_worker(k: int, redis_url: str, tasks, results) -> None:
    """One OS process of the pool: its own Redis client, Promotions object and real clock.

    It runs the tasks it is sent (timed issuance, raw EVALSHA, HTTP load, oversell claims) and
    puts one result dict on `results` per task; None ends it.
    """
    from app.extensions import make_redis
    from core.clock import Clock
    from geo.stores import StoreCatalog
    from promotions import CouponCodec, Promotions

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent cleans up on Ctrl-C
    clock = Clock()
    r = make_redis(redis_url)  # the client the app builds
    promos = Promotions(r, clock, StoreCatalog(r, clock), CouponCodec(COUPON_KEYS))
    results.put({"k": k, "kind": "ready", "pid": os.getpid()})
    while True:
        task = tasks.get()
        if task is None:
            break
        kind, spec = task
        try:
            if kind == "issue":
                out = run_issue(k, promos, spec)
            elif kind == "raw":
                out = run_raw(k, redis_url, spec)
            elif kind == "http":
                out = run_http_load(k, spec)
            elif kind == "claims":
                out = run_claims(k, spec)
            else:
                raise ValueError(f"unknown task {kind!r}")
        except Exception as exc:  # report, do not hang the parent
            import traceback

            out = {"error": f"{type(exc).__name__}: {exc}\n{traceback.format_exc()[-2000:]}"}
        out.update(k=k, kind=kind)
        results.put(out)
    r.close()


def sleep_until(at: float) -> None:
    """Sleep until a time.time() instant."""
    delay = at - time.time()
    if delay > 0:
        time.sleep(delay)


def run_issue(k: int, promos, spec: dict) -> dict:
    """Issue coupons through Promotions.issue for `duration` seconds from `start_at`."""
    rng = random.Random(spec["seed"] * 100 + k)
    shoppers, stores = spec["shoppers"], spec["stores"]
    cid, oid, run = spec["cid"], spec["oid"], spec["run"]
    for i in range(5):  # warm the campaign view and the store cache (not counted)
        promos.issue(
            cid,
            oid,
            rng.choice(shoppers),
            channel="manual",
            idempotency_key=f"{run}-warm-{k}-{i}",
            store_id=rng.choice(stores),
        )
    outcomes: Counter = Counter()
    lat: list[float] = []
    perf = time.perf_counter
    sleep_until(spec["start_at"])
    end = spec["start_at"] + spec["duration"]
    cpu0 = time.process_time()
    i = 0
    while time.time() < end:
        t = perf()
        res = promos.issue(
            cid,
            oid,
            rng.choice(shoppers),
            channel="manual",
            idempotency_key=f"{run}-{k}-{i}",
            store_id=rng.choice(stores),
        )
        lat.append((perf() - t) * 1000.0)
        outcomes[res.outcome if res.ok else res.reason] += 1
        i += 1
    finished = time.time()
    return {
        "outcomes": dict(outcomes),
        "lat_ms": [round(x, 3) for x in lat],
        "finished": finished,
        "cpu_s": time.process_time() - cpu0,
    }


def run_raw(k: int, redis_url: str, spec: dict) -> dict:
    """Send pipelines of EVALSHA ISSUE (the Issuer's keys and arguments) on a plain socket.

    Commands are packed by hiredis and replies parsed by hiredis, so this process spends a few
    microseconds per call and the server is what limits the rate.
    """
    from urllib.parse import urlparse
    from zoneinfo import ZoneInfo

    import hiredis

    from promotions.campaigns import local_day_hour
    from promotions.issuance import DAY_KEY_TTL_S, issue_keys

    rng = random.Random(spec["seed"] * 100 + k)
    cid, oid, sha, run, batch = spec["cid"], spec["oid"], spec["sha"], spec["run"], spec["batch"]
    tz = ZoneInfo(spec["timezone"])
    stores = spec["stores"]
    now = time.time()
    day, hour = local_day_hour(now, tz)
    # Each shopper's keys and coupon terms, built once the way Issuer.issue builds them.
    prepared = []
    for n, shopper in enumerate(spec["shoppers"]):
        store = stores[n % len(stores)]
        terms = dict(spec["terms"], shopper_id=shopper, store_id=store)
        tail_base = json.dumps(terms, separators=(",", ":"), ensure_ascii=False)[1:]
        prepared.append((shopper, store, issue_keys(cid, oid, shopper, day), tail_base))
    url = urlparse(redis_url)
    sock = socket.create_connection((url.hostname, url.port or 6379))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    reader = hiredis.Reader()
    pack = hiredis.pack_command
    source = json.dumps({}, separators=(",", ":"))
    ok = refused = errors = 0
    reasons: Counter = Counter()
    sleep_until(spec["start_at"])
    end = spec["start_at"] + spec["duration"]
    cpu0 = time.process_time()
    i = 0
    pipelines = 0
    while time.time() < end:
        now = time.time()
        nows = repr(now)
        expires = repr(now + 7 * 86_400)
        parts = []
        for _ in range(batch):
            shopper, store, keys, tail = prepared[rng.randrange(len(prepared))]
            parts.append(
                pack(
                    (
                        "EVALSHA",
                        sha,
                        12,
                        *keys,
                        nows,
                        oid,
                        shopper,
                        store,
                        "manual",
                        f"{run}-{k}-{i}",
                        cid,
                        tail.replace('"issued_at":0', f'"issued_at":{nows}'),
                        nows,
                        expires,
                        hour,
                        day,
                        DAY_KEY_TTL_S,
                        "system",
                        source,
                    )
                )
            )
            i += 1
        sock.sendall(b"".join(parts))
        got = 0
        while got < batch:
            reply = reader.gets()
            while reply is False:
                reader.feed(sock.recv(1 << 20))
                reply = reader.gets()
            got += 1
            if isinstance(reply, hiredis.ReplyError):
                errors += 1
                reasons[str(reply)[:80]] += 1
            elif reply[0] == b"ok":
                ok += 1
            else:
                refused += 1
                reasons[reply[1].decode() if len(reply) > 1 else "?"] += 1
        pipelines += 1
    finished = time.time()
    sock.close()
    return {
        "ok": ok,
        "refused": refused,
        "errors": errors,
        "reasons": dict(reasons),
        "pipelines": pipelines,
        "finished": finished,
        "cpu_s": time.process_time() - cpu0,
    }


def local_port(session, base: str) -> int | None:
    """Return the local TCP port of a session's idle keep-alive connection to `base`."""
    pools = session.get_adapter(base).poolmanager.pools
    for key in list(pools.keys()):
        pool = pools.get(key)
        for conn in list(pool.pool.queue) if pool is not None and pool.pool else []:
            sock = getattr(conn, "sock", None) if conn is not None else None
            if sock is not None:
                return sock.getsockname()[1]
    return None


def owner_of(port: int | None, pids: list[int]) -> int | None:
    """Return which of the server processes holds the other end of a client's connection."""
    import psutil

    if port is None:
        return None
    for pid in pids:
        for conn in psutil.Process(pid).net_connections(kind="tcp"):
            if conn.raddr and conn.raddr.port == port:
                return pid
    return None


def pinned_session(base: str, token: str, want: int | None, pids: list[int], tries: int = 40):
    """Open a keep-alive session; with `want`, reconnect until the worker `want` holds it.

    Gunicorn's workers share one listening socket and the first to wake accepts, so the few
    connections of a benchmark tend to land on one worker. A load balancer would spread them;
    here each client picks a worker and reconnects until that worker accepted it.
    """
    import requests

    for _ in range(tries):
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        session.get(base + "/healthz", timeout=10)  # connect before the start
        if want is None or owner_of(local_port(session, base), pids) == want:
            return session, True
        session.close()
    return session, False


def run_http_load(k: int, spec: dict) -> dict:
    """POST issuances from `threads` keep-alive sessions; count answers in the window."""
    import requests

    base = spec["base"]
    url = f"{base}/api/campaigns/{spec['cid']}/offers/{spec['oid']}/issue"
    shoppers, stores, run = spec["shoppers"], spec["stores"], spec["run"]
    begin = spec["start_at"] + spec["warmup"]
    end = begin + spec["duration"]
    lock = threading.Lock()
    statuses: Counter = Counter()
    lat: list[float] = []
    errors: list[str] = []

    pinned: list[bool] = []
    pids = spec.get("server_pids") or []

    def client(t: int) -> None:
        rng = random.Random(spec["seed"] * 1000 + k * 64 + t)
        # Client t of load process k goes to server worker (k + n * t) mod workers.
        want = pids[(k + spec["procs"] * t) % len(pids)] if len(pids) > 1 else None
        session, ok = pinned_session(base, spec["token"], want, pids)
        pinned.append(ok)
        my_status: Counter = Counter()
        my_lat: list[float] = []
        perf = time.perf_counter
        sleep_until(spec["start_at"])
        i = 0
        while True:
            now = time.time()
            if now >= end:
                break
            body = {
                "shopper_id": rng.choice(shoppers),
                "store_id": rng.choice(stores),
                "idempotency_key": f"{run}-http-{k}-{t}-{i}",
            }
            i += 1
            t0 = perf()
            try:
                resp = session.post(url, json=body, timeout=30)
                code = resp.status_code
                if code >= 400 and len(errors) < 5:
                    errors.append(f"{code} {resp.text[:200]}")
            except requests.RequestException as exc:
                code = 0
                if len(errors) < 5:
                    errors.append(repr(exc)[:200])
            done = time.time()
            if begin <= done < end:
                my_status[str(code)] += 1
                my_lat.append((perf() - t0) * 1000.0)
        session.close()
        with lock:
            statuses.update(my_status)
            lat.extend(my_lat)

    cpu0 = time.process_time()
    threads = [threading.Thread(target=client, args=(t,)) for t in range(spec["threads"])]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return {
        "statuses": dict(statuses),
        "lat_ms": [round(x, 3) for x in lat],
        "errors": errors,
        "cpu_s": time.process_time() - cpu0,
        "unpinned": pinned.count(False),
    }


def run_claims(k: int, spec: dict) -> dict:
    """Fire this process's share of the oversell claims from `threads` threads at once."""
    import requests

    bases = spec["bases"]
    claims = spec["claims"]
    n_threads = spec["threads"]
    lock = threading.Lock()
    statuses: Counter = Counter()
    by_server: Counter = Counter()
    lat: list[float] = []
    errors: list[str] = []
    issued_keys: list[str] = []

    def client(t: int) -> None:
        # Spread the threads of every load process evenly over the servers.
        base = bases[(k * n_threads + t) % len(bases)]
        url = f"{base}/api/campaigns/{spec['cid']}/offers/{spec['oid']}/issue"
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {spec['token']}"
        session.get(base + "/healthz", timeout=10)
        mine = claims[t::n_threads]
        my_status: Counter = Counter()
        my_lat: list[float] = []
        my_keys: list[str] = []
        perf = time.perf_counter
        sleep_until(spec["start_at"])
        for shopper, store, key in mine:
            t0 = perf()
            try:
                resp = session.post(
                    url,
                    json={"shopper_id": shopper, "store_id": store, "idempotency_key": key},
                    timeout=60,
                )
                code = str(resp.status_code)
                if resp.status_code == 409:
                    code += ":" + resp.json()["error"]["code"]
                elif resp.status_code == 201:
                    my_keys.append(key)
                elif len(errors) < 5:
                    errors.append(f"{resp.status_code} {resp.text[:200]}")
            except requests.RequestException as exc:
                code = "error"
                if len(errors) < 5:
                    errors.append(repr(exc)[:200])
            my_lat.append((perf() - t0) * 1000.0)
            my_status[code] += 1
        session.close()
        with lock:
            statuses.update(my_status)
            by_server[base] += my_status.get("201", 0)
            lat.extend(my_lat)
            issued_keys.extend(my_keys)

    threads = [threading.Thread(target=client, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return {
        "statuses": dict(statuses),
        "by_server": dict(by_server),
        "errors": errors,
        "lat_ms": [round(x, 3) for x in lat],
        "issued_keys": issued_keys,
        "finished": time.time(),
    }


class Pool:
    """The benchmark's worker processes (spawned once, used by every part)."""

    def __init__(self, n: int, redis_url: str) -> None:
        import psutil

        ctx = multiprocessing.get_context("spawn")
        self.results = ctx.Queue()
        self.queues = [ctx.Queue() for _ in range(n)]
        self.procs = [
            ctx.Process(
                target=pool_worker,
                args=(k, redis_url, q, self.results),
                daemon=True,
                name=f"promo-bench-worker-{k}",
            )
            for k, q in enumerate(self.queues)
        ]
        for p in self.procs:
            p.start()
        ready = [self.get(60.0) for _ in self.procs]
        self.pids = [msg["pid"] for msg in sorted(ready, key=lambda m: m["k"])]
        self.ps = {f"worker{k}": psutil.Process(pid) for k, pid in enumerate(self.pids)}

    def get(self, timeout: float) -> dict:
        """Return the next result; fail if a worker died or nothing came in time."""
        import queue

        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.results.get(timeout=1.0)
            except queue.Empty:
                dead = [p.name for p in self.procs if not p.is_alive()]
                if dead:
                    raise RuntimeError(f"worker process(es) died: {dead}") from None
                if time.monotonic() > deadline:
                    raise RuntimeError("workers did not answer in time") from None

    def run(self, kind: str, specs: list[dict], timeout: float) -> list[dict]:
        """Send one task to each of the first len(specs) workers; return their results."""
        for q, spec in zip(self.queues, specs, strict=False):
            q.put((kind, spec))
        out = [self.get(timeout) for _ in specs]
        failed = [o["error"] for o in out if "error" in o]
        if failed:
            raise RuntimeError(f"{kind} task failed in a worker:\n{failed[0]}")
        return sorted(out, key=lambda o: o["k"])

    def close(self) -> None:
        """Ask every worker to stop; terminate those that do not."""
        for q in self.queues:
            try:
                q.put(None)
            except (OSError, ValueError):
                pass
        for p in self.procs:
            p.join(5.0)
            if p.is_alive():
                p.terminate()
                p.join(2.0)


# -- CPU of a window -------------------------------------------------------------------------
class CpuWindow:
    """CPU use of named processes over a window, with the worker processes added up.

    The processes not named here that took the most CPU meanwhile are listed under `top_others`
    (AOF rewrite children, the other gunicorn, other programs on the machine).
    """

    def __init__(self, procs: dict) -> None:
        self.procs = procs
        self.before = cpu_seconds(procs)
        self.all_before = _all_cpu()
        self.t0 = time.perf_counter()

    def stop(self) -> dict:
        """Return % of one core per process; `workers` sums the pool's processes."""
        wall = time.perf_counter() - self.t0
        cpu = cpu_percent(self.before, cpu_seconds(self.procs), wall)
        workers = [v for name, v in cpu.items() if name.startswith("worker")]
        out = {name: v for name, v in cpu.items() if not name.startswith("worker")}
        if workers:
            out["workers"] = round(sum(workers), 1)
            out["busiest_worker"] = max(workers)
        ours = {p.pid for p in self.procs.values()}
        after = _all_cpu()
        others = []
        for pid, (name, cpu_s) in after.items():
            if pid in ours:
                continue
            # A process born during the window (an AOF rewrite child) counts from zero.
            used = cpu_s - self.all_before.get(pid, (name, 0.0))[1]
            if used / wall >= 0.03:
                others.append((round(100.0 * used / wall, 1), f"{name}:{pid}"))
        if others:
            out["top_others"] = {label: v for v, label in sorted(others, reverse=True)[:4]}
        return out


def _all_cpu() -> dict[int, tuple[str, float]]:
    """Return {pid: (short name, user+system CPU seconds)} of every process we can see."""
    import psutil

    out = {}
    for proc in psutil.process_iter(["name", "cmdline", "cpu_times"]):
        times = proc.info["cpu_times"]
        if times is None:
            continue
        cmd = proc.info["cmdline"] or []
        name = proc.info["name"] or "?"
        if "gunicorn" in " ".join(cmd[:3]):
            name = "gunicorn"
        elif any("promo_bench" in c for c in cmd[:3]):
            name = "promo_bench"
        out[proc.pid] = (name, times.user + times.system)
    return out


def start_profile(pid: int, out: Path, seconds: float) -> subprocess.Popen | None:
    """Start py-spy on a process for `seconds`; None without py-spy."""
    spy = find_py_spy()
    if spy is None:
        log("profile: py-spy not found (pip install py-spy); not profiling")
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [
            spy,
            "record",
            "-p",
            str(pid),
            "-r",
            "250",
            "-d",
            str(max(1, int(seconds))),
            "-f",
            "raw",
            "--nonblocking",
            "-o",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def finish_profile(spy: subprocess.Popen | None, out: Path, label: str) -> None:
    """Wait for py-spy and print the hottest frames."""
    if spy is None:
        return
    _, err = spy.communicate(timeout=120)
    if out.exists():
        log(f"profile of {label} in {out}\n" + summarize_collapsed(out))
    else:
        log(f"profile of {label}: py-spy failed: {err.decode(errors='replace')[-500:]}")


# -- the parts -------------------------------------------------------------------------------
def part_issue(
    pool: Pool,
    r,
    base_procs: dict,
    cid: str,
    oid: str,
    shoppers: list[str],
    stores: list[str],
    args,
) -> dict:
    """(a) Promotions.issue from the pool's processes, every cap active."""
    n = args.procs
    settle(r)
    rewrites0 = aof_rewrites(r)
    start_at = time.time() + 1.0
    specs = [
        {
            "cid": cid,
            "oid": oid,
            "shoppers": shoppers,
            "stores": stores,
            "run": "dom",
            "seed": args.seed,
            "start_at": start_at,
            "duration": args.duration,
        }
        for _ in range(n)
    ]
    spy = None
    prof = args.profile / "issue_worker0.txt" if args.profile else None
    for q, spec in zip(pool.queues, specs, strict=False):
        q.put(("issue", spec))
    sleep_until(start_at)
    procs = dict(base_procs) | {k: v for k, v in pool.ps.items() if int(k[6:]) < n}
    window = CpuWindow(procs)
    stats0 = evalsha_stats(r)
    if prof is not None:
        spy = start_profile(pool.pids[0], prof, args.duration)
    out = [pool.get(args.duration + 60.0) for _ in range(n)]
    failed = [o["error"] for o in out if "error" in o]
    if failed:
        raise RuntimeError(f"issue task failed in a worker:\n{failed[0]}")
    cpu = window.stop()
    stats = evalsha_delta(stats0, evalsha_stats(r))
    if prof is not None:
        finish_profile(spy, prof, "worker 0 during Promotions.issue")
    wall = max(o["finished"] for o in out) - start_at
    outcomes: Counter = Counter()
    lat: list[float] = []
    for o in out:
        outcomes.update(o["outcomes"])
        lat.extend(o["lat_ms"])
    lat.sort()
    issued = outcomes.get("issued", 0)
    calls = sum(outcomes.values())
    cpu_s = sum(o["cpu_s"] for o in out)
    res = {
        "per_s": issued / wall if wall > 0 else 0.0,
        "issued": issued,
        "calls": calls,
        "wall_s": round(wall, 3),
        "outcomes": dict(outcomes),
        "procs": n,
        "p50_ms": pct(lat, 0.50),
        "p99_ms": pct(lat, 0.99),
        "max_ms": pct(lat, 1.0),
        "client_cpu_us_per_call": round(cpu_s / calls * 1e6, 1) if calls else None,
        "redis_cpu_us_per_call": (
            round(cpu["redis"] / 100.0 * wall / calls * 1e6, 1)
            if calls and "redis" in cpu
            else None
        ),
        "evalsha": stats,
        "cpu": cpu,
        "aof_rewrites": aof_rewrites(r) - rewrites0,
    }
    log(
        f"issue: {issued} issued in {wall:.2f}s by {n} processes = {res['per_s']:,.0f}/s; "
        f"outcomes {dict(outcomes)}; p50 {res['p50_ms']} ms p99 {res['p99_ms']} ms; "
        f"client CPU {res['client_cpu_us_per_call']} us/call, Redis CPU "
        f"{res['redis_cpu_us_per_call']} us/call, EVALSHA {stats}; CPU % of a core {cpu}"
    )
    return res


def part_raw(
    pool: Pool,
    r,
    base_procs: dict,
    promos,
    cid: str,
    oid: str,
    shoppers: list[str],
    stores: list[str],
    args,
) -> dict:
    """(b) The ISSUE script alone: pipelines of EVALSHA, the Issuer's key and argument shapes."""
    from promotions.issuance import coupon_terms

    view = promos.campaigns.view(cid)
    # The coupon terms as Issuer.issue builds them (shopper, store and time filled per call).
    terms = coupon_terms(view, oid, "", now=0, store_id="", source={"channel": "manual"})
    n = args.raw_procs
    settle(r)
    rewrites0 = aof_rewrites(r)
    start_at = time.time() + 1.0 + 0.0002 * len(shoppers)  # time to prepare the shoppers' keys
    specs = [
        {
            "cid": cid,
            "oid": oid,
            "sha": promos.scripts.sha["issue"],
            "run": "raw",
            "batch": args.raw_batch,
            "shoppers": shoppers,
            "stores": stores,
            "timezone": view.doc["timezone"],
            "terms": terms,
            "seed": args.seed,
            "start_at": start_at,
            "duration": args.raw_duration,
        }
        for _ in range(n)
    ]
    for q, spec in zip(pool.queues, specs, strict=False):
        q.put(("raw", spec))
    sleep_until(start_at)
    procs = dict(base_procs) | {k: v for k, v in pool.ps.items() if int(k[6:]) < n}
    window = CpuWindow(procs)
    stats0 = evalsha_stats(r)
    commands0 = command_stats(r)
    out = [pool.get(args.raw_duration + 60.0) for _ in range(n)]
    failed = [o["error"] for o in out if "error" in o]
    if failed:
        raise RuntimeError(f"raw task failed in a worker:\n{failed[0]}")
    cpu = window.stop()
    stats = evalsha_delta(stats0, evalsha_stats(r))
    breakdown = script_breakdown(commands0, command_stats(r))
    wall = max(o["finished"] for o in out) - start_at
    ok = sum(o["ok"] for o in out)
    calls = ok + sum(o["refused"] + o["errors"] for o in out)
    reasons: Counter = Counter()
    for o in out:
        reasons.update(o["reasons"])
    cpu_s = sum(o["cpu_s"] for o in out)
    res = {
        "per_s": ok / wall if wall > 0 else 0.0,
        "ok": ok,
        "calls": calls,
        "wall_s": round(wall, 3),
        "procs": n,
        "batch": args.raw_batch,
        "not_ok": dict(reasons),
        "client_cpu_us_per_call": round(cpu_s / calls * 1e6, 1) if calls else None,
        "redis_cpu_us_per_call": (
            round(cpu["redis"] / 100.0 * wall / calls * 1e6, 1)
            if calls and "redis" in cpu
            else None
        ),
        "evalsha": stats,
        "cpu": cpu,
        "aof_rewrites": aof_rewrites(r) - rewrites0,
        "script_usec_by_command": breakdown,
    }
    log(
        f"raw: {ok} ISSUE scripts ok in {wall:.2f}s from {n} processes, pipelines of "
        f"{args.raw_batch} = {res['per_s']:,.0f}/s; not ok {dict(reasons)}; client CPU "
        f"{res['client_cpu_us_per_call']} us/call, Redis CPU {res['redis_cpu_us_per_call']} "
        f"us/call, EVALSHA {stats}; CPU % of a core {cpu}"
    )
    log(
        "raw: server time of one ISSUE script by command (us): "
        + ", ".join(f"{k} {v['usec']}" for k, v in breakdown.items())
    )
    return res


def gunicorn_procs(server, expect: int) -> dict:
    """Return psutil handles of a gunicorn master's workers, named server0, server1 ..."""
    import psutil

    master = psutil.Process(server.pid)
    deadline = time.monotonic() + 30.0
    while len(workers := master.children()) != expect:
        if time.monotonic() > deadline:
            raise RuntimeError(f"expected {expect} gunicorn workers, found {len(workers)}")
        time.sleep(0.1)
    return {f"server{i}": w for i, w in enumerate(sorted(workers, key=lambda p: p.pid))}


def part_http(
    pool: Pool,
    r,
    redis_proc,
    server,
    n_workers: int,
    cid: str,
    oid: str,
    token: str,
    shoppers: list[str],
    stores: list[str],
    args,
    label: str,
) -> dict:
    """POST .../issue from keep-alive sessions in the pool's processes against one gunicorn."""
    n = args.http_procs
    threads = [args.http_clients // n + (1 if k < args.http_clients % n else 0) for k in range(n)]
    workers = gunicorn_procs(server, n_workers)
    settle(r)
    rewrites0 = aof_rewrites(r)
    start_at = time.time() + 1.0 + 0.5 * (n_workers > 1)  # time to pin the connections
    specs = [
        {
            "base": server.url,
            "cid": cid,
            "oid": oid,
            "token": token,
            "shoppers": shoppers,
            "stores": stores,
            "run": label,
            "seed": args.seed,
            "threads": threads[k],
            "start_at": start_at,
            "warmup": args.http_warmup,
            "duration": args.http_duration,
            "procs": n,
            "server_pids": [p.pid for p in workers.values()],
        }
        for k in range(n)
    ]
    for q, spec in zip(pool.queues, specs, strict=False):
        q.put(("http", spec))
    sleep_until(start_at + args.http_warmup)
    procs = {"redis": redis_proc} | workers | {k: v for k, v in pool.ps.items() if int(k[6:]) < n}
    window = CpuWindow(procs)
    stats0 = evalsha_stats(r)
    commands0 = command_counts(r)
    spy = None
    prof = args.profile / f"{label}_server0.txt" if args.profile else None
    if prof is not None:
        spy = start_profile(workers["server0"].pid, prof, args.http_duration)
    time.sleep(max(0.0, start_at + args.http_warmup + args.http_duration - time.time()))
    cpu = window.stop()
    stats = evalsha_delta(stats0, evalsha_stats(r))
    commands1 = command_counts(r)
    out = [pool.get(args.http_duration + 90.0) for _ in range(n)]
    failed = [o["error"] for o in out if "error" in o]
    if failed:
        raise RuntimeError(f"http task failed in a worker:\n{failed[0]}")
    if prof is not None:
        finish_profile(spy, prof, f"the gunicorn worker ({label})")
    statuses: Counter = Counter()
    lat: list[float] = []
    errors: list[str] = []
    for o in out:
        statuses.update(o["statuses"])
        lat.extend(o["lat_ms"])
        errors.extend(o["errors"])
    lat.sort()
    ok = statuses.get("201", 0)
    server_cpu = sum(v for name, v in cpu.items() if name.startswith("server"))
    res = {
        "per_s": ok / args.http_duration,
        "statuses": dict(statuses),
        "p50_ms": pct(lat, 0.50),
        "p90_ms": pct(lat, 0.90),
        "p99_ms": pct(lat, 0.99),
        "clients": args.http_clients,
        "load_procs": n,
        "gunicorn_workers": n_workers,
        "server_cpu_ms_per_request": (
            round(server_cpu * 10.0 / (ok / args.http_duration), 3) if ok else None
        ),
        "evalsha": stats,
        "cpu": cpu,
        "aof_rewrites": aof_rewrites(r) - rewrites0,
        "redis_commands_per_request": commands_per_request(commands0, commands1, stats["calls"]),
    }
    unpinned = sum(o["unpinned"] for o in out)
    if unpinned:
        res["unpinned_clients"] = unpinned
        log(f"http ({label}): WARNING {unpinned} clients could not reach their worker")
    if errors:
        res["errors"] = errors[:3]
    log(
        f"http ({label}, -w {n_workers}): {res['per_s']:,.0f} issued/s, p50 {res['p50_ms']} "
        f"ms, p99 {res['p99_ms']} ms, statuses {dict(statuses)}, server CPU "
        f"{res['server_cpu_ms_per_request']} ms/request, EVALSHA {stats}; CPU % of a core {cpu}; "
        f"Redis commands per request {res['redis_commands_per_request']}"
        + (f"; errors {errors[:2]}" if errors else "")
    )
    return res


def part_oversell(
    pool: Pool, r, promos, servers: list, token: str, shoppers: list[str], stores: list[str], args
) -> dict:
    """(c) A fresh offer capped at `cap`; `claims` concurrent claims split over two servers."""
    from promotions import keys

    settle(r)
    cid, oid = make_campaign(
        promos,
        "Oversell check",
        total=args.cap,
        per_shopper=1,
        per_shopper_day=1,
        per_store_day=CAP_HIGH,
        budget_count=CAP_HIGH,
    )
    rng = random.Random(args.seed + 1)
    claims = [
        (shoppers[i % len(shoppers)], rng.choice(stores), f"claim-{i}") for i in range(args.claims)
    ]
    n = args.claim_procs
    start_at = time.time() + 1.5  # every thread has connected by then
    specs = [
        {
            "bases": [s.url for s in servers],
            "cid": cid,
            "oid": oid,
            "token": token,
            "claims": claims[k::n],
            "threads": args.claim_threads,
            "start_at": start_at,
        }
        for k in range(n)
    ]
    out = pool.run("claims", specs, timeout=300.0)
    wall = max(o["finished"] for o in out) - start_at
    statuses: Counter = Counter()
    by_server: Counter = Counter()
    lat: list[float] = []
    errors: list[str] = []
    issued_keys: list[str] = []
    for o in out:
        statuses.update(o["statuses"])
        by_server.update(o["by_server"])
        lat.extend(o["lat_ms"])
        errors.extend(o["errors"])
        issued_keys.extend(o["issued_keys"])
    lat.sort()
    created = statuses.get("201", 0)
    offer = r.hgetall(keys.offer(cid, oid))
    meta = r.hmget(keys.meta(cid), "issued", "seq")
    ledger_issues = sum(1 for _, f in r.xrange(keys.ledger(cid)) if f.get("type") == "issue")
    coupons = r.hlen(keys.coupons(cid))
    idem = r.hlen(keys.idempotency(cid))
    counts = {
        "http_201": created,
        "offer_issued": int(offer.get("issued") or 0),
        "campaign_issued": int(meta[0] or 0),
        "ledger_issue_entries": ledger_issues,
        "coupons_in_hash": coupons,
        "idempotency_keys": idem,
    }
    agree = len(set(counts.values())) == 1
    issued = max(counts.values())
    res = {
        "cap": args.cap,
        "claims": args.claims,
        "issued": issued,
        "oversell": max(0, issued - args.cap),
        "counts_agree": agree,
        "counts": counts,
        "statuses": dict(statuses),
        "by_server": {str(i): by_server.get(s.url, 0) for i, s in enumerate(servers)},
        "duplicate_201_keys": len(issued_keys) - len(set(issued_keys)),
        "claims_per_s": round(args.claims / wall, 1) if wall > 0 else None,
        "p50_ms": pct(lat, 0.50),
        "p99_ms": pct(lat, 0.99),
        "load": f"{n} processes x {args.claim_threads} threads, {len(servers)} servers",
    }
    if errors:
        res["errors"] = errors[:3]
    log(
        f"oversell: {args.claims} claims on cap {args.cap} over {len(servers)} servers in "
        f"{wall:.2f}s: statuses {dict(statuses)}; counts {counts} "
        f"({'agree' if agree else 'DISAGREE'}); by server {res['by_server']}"
    )
    return res


# -- main ------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--duration", type=float, default=10.0, help="seconds of timed Promotions.issue")
    p.add_argument("--procs", type=int, default=8, help="worker processes calling issue()")
    p.add_argument("--raw-duration", type=float, default=5.0, help="seconds of timed raw EVALSHA")
    p.add_argument("--raw-procs", type=int, default=8, help="processes sending raw EVALSHA")
    p.add_argument("--raw-batch", type=int, default=100, help="EVALSHA per pipeline")
    p.add_argument(
        "--http-duration", type=float, default=10.0, help="seconds of each timed HTTP run"
    )
    p.add_argument(
        "--http-warmup", type=float, default=1.0, help="seconds of load before each HTTP window"
    )
    p.add_argument(
        "--http-clients",
        type=int,
        default=8,
        help="concurrent HTTP clients (threads with keep-alive sessions)",
    )
    p.add_argument(
        "--http-procs",
        type=int,
        default=2,
        help="processes the HTTP client threads are spread over",
    )
    p.add_argument(
        "--skip-http2", action="store_true", help="skip the second HTTP run against gunicorn -w 2"
    )
    p.add_argument(
        "--shoppers", type=int, default=5_000, help="shopper accounts (at least --claims are made)"
    )
    p.add_argument("--stores", type=int, default=8, help="stores of the campaign's brand")
    p.add_argument("--claims", type=int, default=5_000, help="oversell check: claims")
    p.add_argument("--cap", type=int, default=500, help="oversell check: the offer's total cap")
    p.add_argument("--claim-procs", type=int, default=2, help="oversell check: load processes")
    p.add_argument(
        "--claim-threads", type=int, default=32, help="oversell check: threads per load process"
    )
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--profile",
        metavar="DIR",
        type=Path,
        default=None,
        help="py-spy one issuing worker and the gunicorn worker (collapsed stacks)",
    )
    p.add_argument(
        "--quick", action="store_true", help="small sizes for a smoke run (figures meaningless)"
    )
    args = p.parse_args(argv)
    if args.quick:
        args.duration = min(args.duration, 1.0)
        args.raw_duration = min(args.raw_duration, 1.0)
        args.http_duration = min(args.http_duration, 1.0)
        args.http_warmup = min(args.http_warmup, 0.3)
        args.shoppers = min(args.shoppers, 1_000)
        args.claims = min(args.claims, 1_000)
        args.cap = min(args.cap, 100)
        args.claim_threads = min(args.claim_threads, 16)
        args.skip_http2 = True
    needed = max(args.procs, args.raw_procs, args.http_procs, args.claim_procs)
    if (
        min(
            args.procs,
            args.raw_procs,
            args.http_procs,
            args.claim_procs,
            args.stores,
            args.claims,
            args.cap,
            args.http_clients,
            args.claim_threads,
            args.raw_batch,
        )
        < 1
    ):
        p.error("sizes must be positive")
    args.pool_size = needed
    args.shoppers = max(args.shoppers, args.claims)
    return args


def machine_notes() -> dict:
    """Describe the machine and the versions the figures come from."""
    import gunicorn
    import redis as redis_py

    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "gunicorn": gunicorn.__version__,
        "redis_py": redis_py.__version__,
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def on_term(signum, frame):  # clean up the servers on SIGTERM as on Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    import psutil
    import redis

    from app.redis_supervisor import EmbeddedRedis, free_port
    from tests.servers import start_gunicorn

    notes = machine_notes()
    tmp = Path(tempfile.mkdtemp(prefix="promo-bench-"))
    server = pool = None
    gunicorns: list = []
    result: dict = {}
    try:
        # AOF on with fsync every second, as in production. A server that starts empty would
        # also rewrite its AOF each time the file doubles (64, 128, 256 MB ...), i.e. during
        # every part; production, with its data already there, rarely does. So the automatic
        # rewrite waits for 8 GB here (see README).
        server = EmbeddedRedis(
            tmp / "redis",
            free_port(),
            appendonly=True,
            extra_args=["--auto-aof-rewrite-min-size", "8gb"],
        )
        server.start()
        r = redis.Redis.from_url(server.url, decode_responses=True)
        notes["valkey"] = r.info("server").get("valkey_version") or r.info("server").get(
            "redis_version"
        )
        redis_proc = psutil.Process(server.process.pid)
        log(f"valkey {notes['valkey']} on 127.0.0.1:{server.port} (AOF everysec, data in {tmp})")
        # The worker processes start (spawn) while this process makes the accounts.
        with ThreadPoolExecutor(1) as bg:
            pool_future = bg.submit(Pool, args.pool_size, server.url)
            app = make_setup_app(server.url, tmp)
            promos = app.extensions["promotions"]
            stores = add_stores(app.extensions["stores"], args.stores)
            t = time.perf_counter()
            shoppers, token = make_accounts(app, args.shoppers)
            log(
                f"{len(shoppers)} shopper accounts and a marketer in "
                f"{time.perf_counter() - t:.2f}s; {len(stores)} stores"
            )
            cid, oid = make_campaign(
                promos,
                "Bench: every cap",
                total=CAP_HIGH,
                per_shopper=10_000,
                per_shopper_day=10_000,
                per_store_day=CAP_HIGH,
                budget_count=CAP_HIGH,
            )
            promos.scripts.load()
            pool = pool_future.result()
        log(
            f"{args.pool_size} worker processes ready; campaign {cid} offer {oid} live with "
            f"every cap set (offer total/value, budget count/value, per shopper, per shopper "
            f"and day, per store and day)"
        )
        # Two gunicorns for the HTTP parts, booted side by side before any timed part (a boot
        # takes ~2 s of CPU, which must not land in a measurement window).
        with ThreadPoolExecutor(2) as bg:
            gunicorns = list(
                bg.map(
                    lambda i: start_gunicorn(
                        server.url, free_port(), 1, {"FOOTFALL_VAR_DIR": str(tmp / f"var{i}")}
                    ),
                    range(2),
                )
            )
        log(f"gunicorn -k gevent -w 1 on {gunicorns[0].url} and {gunicorns[1].url}")
        base = {"redis": redis_proc}
        issue = part_issue(pool, r, base, cid, oid, shoppers, stores, args)
        raw = part_raw(pool, r, base, promos, cid, oid, shoppers, stores, args)
        http = part_http(
            pool, r, redis_proc, gunicorns[0], 1, cid, oid, token, shoppers, stores, args, "http_w1"
        )
        over = part_oversell(pool, r, promos, gunicorns, token, shoppers, stores, args)
        for g in gunicorns:
            g.close()
        gunicorns = []
        http2 = None
        if not args.skip_http2:
            g2 = start_gunicorn(server.url, free_port(), 2, {"FOOTFALL_VAR_DIR": str(tmp / "var2")})
            gunicorns = [g2]
            log(f"gunicorn -k gevent -w 2 on {g2.url}")
            http2 = part_http(
                pool, r, redis_proc, g2, 2, cid, oid, token, shoppers, stores, args, "http_w2"
            )
        persistence = r.info("persistence")
        redis_mem = r.info("memory").get("used_memory_human")
        app.extensions["redis"].close()
        r.close()

        issue_per_s = issue["per_s"]
        raw_per_s = raw["per_s"]
        result = {
            "bench": "promo",
            "issue_per_s": round(issue_per_s, 1),
            "raw_script_per_s": round(raw_per_s, 1),
            "ratio_to_raw": round(issue_per_s / raw_per_s, 3) if raw_per_s else 0.0,
            "oversell": over["oversell"],
            "issued_of_cap": f"{over['issued']}/{over['cap']}",
            "http_issue_per_s": round(http["per_s"], 1),
            "http_p50_ms": http["p50_ms"],
            "http_p99_ms": http["p99_ms"],
            "http_issue_per_s_2workers": round(http2["per_s"], 1) if http2 else None,
            "http_2workers_p50_ms": http2["p50_ms"] if http2 else None,
            "http_2workers_p99_ms": http2["p99_ms"] if http2 else None,
            "oversell_counts_agree": over["counts_agree"],
            "issue_p50_ms": issue["p50_ms"],
            "issue_p99_ms": issue["p99_ms"],
            "redis_usec_per_evalsha": {
                "issue": issue["evalsha"]["usec_per_call"],
                "raw": raw["evalsha"]["usec_per_call"],
                "http_w1": http["evalsha"]["usec_per_call"],
                "http_w2": http2["evalsha"]["usec_per_call"] if http2 else None,
            },
            "quick": args.quick,
            "issue": {
                k: issue[k]
                for k in (
                    "issued",
                    "calls",
                    "wall_s",
                    "outcomes",
                    "procs",
                    "max_ms",
                    "client_cpu_us_per_call",
                    "redis_cpu_us_per_call",
                )
            },
            "raw": {
                k: raw[k]
                for k in (
                    "ok",
                    "calls",
                    "wall_s",
                    "procs",
                    "batch",
                    "not_ok",
                    "client_cpu_us_per_call",
                    "redis_cpu_us_per_call",
                    "script_usec_by_command",
                )
            },
            "http": {
                k: http[k]
                for k in (
                    "statuses",
                    "p90_ms",
                    "clients",
                    "load_procs",
                    "server_cpu_ms_per_request",
                    "redis_commands_per_request",
                )
            },
            "http_2workers": None
            if http2 is None
            else {k: http2[k] for k in ("statuses", "p90_ms", "server_cpu_ms_per_request")},
            "oversell_check": {k: v for k, v in over.items() if k not in ("oversell",)},
            "cpu": {
                "issue": issue["cpu"],
                "raw": raw["cpu"],
                "http_w1": http["cpu"],
                "http_w2": http2["cpu"] if http2 else None,
            },
            "shoppers": len(shoppers),
            "stores": len(stores),
            "durations_s": {
                "issue": args.duration,
                "raw": args.raw_duration,
                "http": args.http_duration,
            },
            "redis": {
                "used_memory": redis_mem,
                "aof_rewrites": persistence.get("aof_rewrites"),
                "aof_rewrites_during": {
                    "issue": issue["aof_rewrites"],
                    "raw": raw["aof_rewrites"],
                    "http_w1": http["aof_rewrites"],
                    "http_w2": http2["aof_rewrites"] if http2 else None,
                },
                "aof_current_size": persistence.get("aof_current_size"),
            },
            "machine": notes,
            "run_s": round(time.monotonic() - _STARTED, 1),
        }
        if args.profile is not None:
            result["profiled"] = str(args.profile)
    finally:
        for g in gunicorns:
            g.close()
        if pool is not None:
            pool.close()
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
