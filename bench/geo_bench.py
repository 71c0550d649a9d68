"""Geofencing throughput: the location engine in-process, and POST /api/location/fix over HTTP.

Run from the repository root (see bench/README.md)::

    python bench/geo_bench.py                 # full run: 10k shoppers, 5k stores, ~1.5 min
    python bench/geo_bench.py --quick         # smoke run, a few seconds
    python bench/geo_bench.py --profile var/bench-profile   # also profile both paths

Everything runs against real parts: a Valkey server started here (temp dir, free port,
127.0.0.1, AOF on with fsync every second as in production), 5,000 demo stores imported through
StoreCatalog.import_rows, shoppers walking around stores in simulated time, and for the HTTP part
a real `gunicorn -k gevent -w 1` serving wsgi:app, loaded by separate load-generator processes
(HTTP) and by python-socketio clients sending fixes on /shopper.

Progress goes to stderr; the last line of stdout is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SECRET_KEY = "bench-secret-key-0123456789-abcdefghijklmnopqrst"  # 48 characters
assert len(SECRET_KEY) == 48
PASSWORD = "bench-password-1"
SHANGHAI = ZoneInfo("Asia/Shanghai")
# The engine part runs on a frozen clock on a Thursday late morning in Shanghai, when the
# demo stores are open (their opening hours decide whether a fence fires).
ENGINE_T0 = datetime(2026, 5, 28, 11, 0, tzinfo=SHANGHAI).timestamp()

M_PER_DEG = 111_320.0  # metres per degree of latitude (and of longitude at the equator)
ROAM_M = 600.0  # a shopper turns back towards their home store beyond this distance
FIX_INTERVAL_S = (5.0, 10.0)
ACCURACY_M = (5.0, 30.0, 10.0)  # triangular(low, high, mode)
NANJING_MARK = "East Nanjing Road"

_STARTED = time.monotonic()


def log(message: str) -> None:
    """Print a progress line to stderr."""
    print(f"[geo-bench {time.monotonic() - _STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


# -- shoppers walking in simulated time ------------------------------------------------------
class Walker:
    """One shopper's walk: 1-2 m/s with heading changes, browsing pauses, GPS noise.

    Each step advances the shopper's own simulated time by 5-10 s and returns the fix the phone
    would report: the true position plus correlated (AR(1)) GPS noise whose 68 % radius is the
    reported accuracy (5-30 m).
    """

    __slots__ = (
        "lat",
        "lon",
        "home_lat",
        "home_lon",
        "heading",
        "speed",
        "t",
        "pause_until",
        "ne",
        "nn",
        "kx",
    )

    def __init__(
        self,
        lat: float,
        lon: float,
        home_lat: float,
        home_lon: float,
        heading: float,
        speed: float,
        t: float,
        pause_until: float,
        ne: float = 0.0,
        nn: float = 0.0,
    ) -> None:
        self.lat, self.lon = lat, lon
        self.home_lat, self.home_lon = home_lat, home_lon
        self.heading, self.speed = heading, speed
        self.t, self.pause_until = t, pause_until
        self.ne, self.nn = ne, nn
        self.kx = M_PER_DEG * math.cos(math.radians(home_lat))

    def to_list(self) -> list[float]:
        """Return the walk state (to hand it to a load-generator process)."""
        return [
            self.lat,
            self.lon,
            self.home_lat,
            self.home_lon,
            self.heading,
            self.speed,
            self.t,
            self.pause_until,
            self.ne,
            self.nn,
        ]

    @classmethod
    def from_list(cls, state: list[float]) -> Walker:
        """Rebuild a walk from to_list()."""
        return cls(*state)

    def step(self, rng: random.Random) -> tuple[float, float, float, float, float]:
        """Walk on to the next fix; return (lat, lon, accuracy_m, recorded_at, speed_mps)."""
        dt = rng.uniform(*FIX_INTERVAL_S)
        t = self.t + dt
        r = rng.random()
        if self.t < self.pause_until:
            # Browsing in a store: pottering about in any direction.
            v = rng.uniform(0.0, 0.3)
            heading = rng.uniform(0.0, 2 * math.pi)
        else:
            self.speed = min(2.0, max(1.0, self.speed + rng.gauss(0.0, 0.1)))
            heading = self.heading + rng.gauss(0.0, 0.35)
            if r < 0.08:
                heading += math.pi / 2 if r < 0.04 else -math.pi / 2  # turn into a side street
            east = (self.lon - self.home_lon) * self.kx
            north = (self.lat - self.home_lat) * M_PER_DEG
            if east * east + north * north > ROAM_M * ROAM_M:
                heading = math.atan2(-east, -north) + rng.gauss(0.0, 0.5)
            self.heading = heading
            v = self.speed
            if r > 0.97:
                self.pause_until = t + rng.uniform(60.0, 300.0)  # walks into a shop
        d = v * dt
        self.lat += d * math.cos(heading) / M_PER_DEG
        self.lon += d * math.sin(heading) / self.kx
        self.t = t
        acc = rng.triangular(*ACCURACY_M)
        sigma = acc / 1.515  # a 2-D Gaussian holds 68 % within 1.515 sigma
        self.ne = 0.6 * self.ne + 0.8 * rng.gauss(0.0, sigma)
        self.nn = 0.6 * self.nn + 0.8 * rng.gauss(0.0, sigma)
        speed = max(0.0, v + rng.gauss(0.0, 0.3))
        return (
            self.lat + self.nn / M_PER_DEG,
            self.lon + self.ne / self.kx,
            round(acc, 1),
            round(t, 3),
            round(speed, 2),
        )


def make_walkers(
    stores: list[dict], n: int, rng: random.Random, t0: float, nanjing_share: float
) -> list[Walker]:
    """Place n shoppers near random stores (a share of them on East Nanjing Road)."""
    nanjing = [s for s in stores if NANJING_MARK in s["address"]] or stores
    walkers = []
    for _ in range(n):
        store = rng.choice(nanjing) if rng.random() < nanjing_share else rng.choice(stores)
        if rng.random() < 0.25:  # starts inside the store, browsing for a while
            dist, pause_until = rng.uniform(0.0, 20.0), t0 + rng.uniform(60.0, 400.0)
        else:
            dist, pause_until = rng.uniform(30.0, 250.0), 0.0
        angle = rng.uniform(0.0, 2 * math.pi)
        kx = M_PER_DEG * math.cos(math.radians(store["lat"]))
        walkers.append(
            Walker(
                store["lat"] + dist * math.cos(angle) / M_PER_DEG,
                store["lon"] + dist * math.sin(angle) / kx,
                store["lat"],
                store["lon"],
                heading=rng.uniform(0.0, 2 * math.pi),
                speed=rng.uniform(1.0, 2.0),
                t=t0 + rng.uniform(0.0, 10.0),
                pause_until=pause_until,
            )
        )
    return walkers


# -- processes and CPU -----------------------------------------------------------------------
def cpu_seconds(procs: dict) -> dict[str, float]:
    """Return user+system CPU seconds of named psutil processes (missing ones are skipped).

    "machine" is the busy time of all cores together, so that the CPU that other programs on
    the machine took during a window shows up as machine minus ours.
    """
    import psutil

    total = psutil.cpu_times()
    out = {"machine": sum(total) - total.idle - getattr(total, "iowait", 0.0)}
    for name, proc in procs.items():
        try:
            times = proc.cpu_times()
            out[name] = times.user + times.system
        except psutil.Error:
            pass
    return out


def cpu_percent(before: dict[str, float], after: dict[str, float], wall: float) -> dict:
    """Return CPU use over a window in % of one core, by process name.

    "machine" is the whole machine (up to 100 % x cores) and "others" what processes not
    named here used meanwhile (other programs on a shared machine: noise).
    """
    out = {
        name: round(100.0 * (after[name] - before[name]) / wall, 1)
        for name in after
        if name in before and wall > 0
    }
    if "machine" in out:
        out["others"] = round(
            max(0.0, out["machine"] - sum(v for k, v in out.items() if k != "machine")), 1
        )
    return out


def start_redis(tmp: Path):
    """Start a real Valkey/Redis server on a free port, AOF on (as in production)."""
    from app.redis_supervisor import EmbeddedRedis, free_port

    server = EmbeddedRedis(tmp / "redis", free_port(), appendonly=True)
    server.start()
    return server


HELLO_APP = """from flask import Flask

app = Flask(__name__)


@app.get("/healthz")
def healthz():
    return {"status": "ok"}
"""


def start_gunicorn(tmp: Path, redis_url: str, port: int, hello: bool = False) -> subprocess.Popen:
    """Start `gunicorn -k gevent -w 1` on wsgi:app in production mode; wait until it answers.

    hello=True serves a plain Flask "hello" app instead (same gunicorn settings), to calibrate
    the harness against the published Flask figure.
    """
    import http.client

    env = dict(os.environ)
    env.update(
        {
            "FOOTFALL_ENV": "production",
            "SECRET_KEY": SECRET_KEY,
            "REDIS_URL": redis_url,
            "LOG_REQUESTS": "0",
            "FOOTFALL_VAR_DIR": str(tmp / "var"),
        }
    )
    cwd = ROOT
    cmd = gunicorn_cmd(port) + ["wsgi:app"]
    if hello:
        cwd = tmp / "hello"
        cwd.mkdir(exist_ok=True)
        (cwd / "hello_app.py").write_text(HELLO_APP)
        conf = ROOT / "gunicorn.conf.py"
        cmd = gunicorn_cmd(port) + (["-c", str(conf)] if conf.exists() else []) + ["hello_app:app"]
    log_file = open(tmp / "gunicorn.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    proc.log_file = log_file  # type: ignore[attr-defined]
    deadline = time.monotonic() + 60.0
    while True:
        if proc.poll() is not None:
            tail = (tmp / "gunicorn.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"gunicorn exited with {proc.returncode}:\n{tail}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2.0)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return proc
            conn.close()
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop_process(proc, group=True)
            raise RuntimeError("gunicorn did not answer /healthz within 60 s")
        time.sleep(0.1)


def gunicorn_cmd(port: int) -> list[str]:
    """Return the gunicorn command line (without the app) for one gevent worker on 127.0.0.1.

    Gunicorn also reads ./gunicorn.conf.py (the project's production settings) when it runs
    from the repository root; the options given here take precedence.
    """
    import gunicorn

    cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        "-k",
        "gevent",
        "-w",
        "1",
        "-b",
        f"127.0.0.1:{port}",
        "--graceful-timeout",
        "5",
        "--log-level",
        "warning",
    ]
    if tuple(gunicorn.version_info[:2]) >= (25, 1):
        # One control socket path per user: concurrent instances would unlink each other's.
        cmd.append("--no-control-socket")
    return cmd


def stop_process(proc: subprocess.Popen | None, timeout: float = 10.0, group: bool = False) -> None:
    """Stop a child process we started: SIGTERM, then SIGKILL after the timeout.

    With group=True the process leads a session of its own (start_new_session) and whatever
    is left of that group (gunicorn workers of a master that died) is killed as well.
    """
    if proc is None:
        return
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if group:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    log_file = getattr(proc, "log_file", None)
    if log_file is not None:
        log_file.close()


def find_py_spy() -> str | None:
    """Return the py-spy binary next to this interpreter or on PATH."""
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def summarize_collapsed(path: Path, top: int = 18) -> str:
    """Summarize py-spy raw (collapsed) stacks: the hottest functions by self and total time."""
    self_t: Counter = Counter()
    total_t: Counter = Counter()
    samples = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        samples += n
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        if frames:
            self_t[frames[-1]] += n
        for frame in set(frames):
            total_t[frame] += n
    if not samples:
        return "(no samples)"
    lines = [f"{samples} samples; hottest by self time:"]
    lines += [f"  {100 * n / samples:5.1f}%  {f}" for f, n in self_t.most_common(top)]
    lines.append("by total (inclusive) time:")
    lines += [f"  {100 * n / samples:5.1f}%  {f}" for f, n in total_t.most_common(top + 12)]
    return "\n".join(lines)


# -- the engine, in this process -------------------------------------------------------------
def tally_outcomes(out: dict, verdicts: Counter, events: Counter, errors: Counter) -> None:
    """Count what became of fixes: verdicts (ignored ones as `ignored:<reason>`), events, and
    refusals by code (a refused shopper's fixes count once each under `refused:<code>`)."""
    from core.errors import DomainError

    for outcome in out.values():
        if isinstance(outcome, DomainError):
            errors[outcome.code] += 1
            continue
        for res in outcome:
            verdicts[f"ignored:{res.reason}" if res.ignored else res.verdict] += 1
            for event in res.events:
                events[event["kind"]] += 1


def stream_length(r) -> int:
    """Return the events in every partition of the geo event stream."""
    from geo import keys

    return sum(r.xlen(stream) for stream in keys.event_streams())


def accepted_of(verdicts: Counter | dict) -> int:
    """Fixes the engine accepted (recorded with a verdict), not ignored ones."""
    return sum(n for verdict, n in verdicts.items() if not verdict.startswith("ignored:"))


def run_engine(
    r, redis_pid: int, stores: list[dict], args, rng: random.Random, profile_dir: Path | None
) -> dict:
    """Feed shoppers' fixes through the engine, batched (record_many, `batch` shoppers per call)
    and as production does (record_fixes, one shopper per call, many concurrent greenlets in
    one gevent process); return figures that count accepted fixes only."""
    import psutil

    from core.clock import FrozenClock
    from geo import keys
    from geo.engine import TRUST_START, EngineSettings, Fix, LocationEngine
    from geo.stores import StoreCatalog

    clock = FrozenClock(ENGINE_T0)
    engine = LocationEngine(r, StoreCatalog(r, clock), clock, EngineSettings())
    ids = [f"bench-{i:06d}" for i in range(args.shoppers)]

    # Consent, written as LocationEngine.set_consent writes it, but pipelined.
    t = time.perf_counter()
    for start in range(0, len(ids), 1000):
        pipe = r.pipeline(transaction=False)
        for sid in ids[start : start + 1000]:
            st = keys.shopper_state(sid)
            pipe.hset(st, mapping={"consent": "1", "consent_at": f"{clock.now():.3f}"})
            pipe.hsetnx(st, "trust", TRUST_START)
            pipe.hincrby(st, "ver", 1)
        pipe.execute()
    log(f"engine: consent for {len(ids)} shoppers in {time.perf_counter() - t:.2f}s")
    walkers = make_walkers(stores, len(ids), rng, ENGINE_T0, args.nanjing_share)

    def tally(out: dict, verdicts: Counter, events: Counter, errors: Counter) -> None:
        tally_outcomes(out, verdicts, events, errors)

    # Prologue (not timed into the figure): each phone uploads a buffered backlog of fixes,
    # so that the timed part runs on shoppers who are already inside fences (dwell, exit).
    pro_verdicts, pro_events, pro_errors = Counter(), Counter(), Counter()
    t = time.perf_counter()
    pro_fixes = 0
    for start in range(0, len(ids), args.batch):
        batches = []
        latest = 0.0
        for i in range(start, min(start + args.batch, len(ids))):
            fixes = [Fix(*walkers[i].step(rng)) for _ in range(args.backlog)]
            latest = max(latest, fixes[-1].recorded_at)
            batches.append((ids[i], fixes))
            pro_fixes += len(fixes)
        clock.set(latest)
        tally(engine.record_many(batches), pro_verdicts, pro_events, pro_errors)
    pro_wall = time.perf_counter() - t
    log(
        f"engine: prologue {pro_fixes} fixes ({args.backlog} per shopper, batched) in "
        f"{pro_wall:.2f}s = {pro_fixes / pro_wall:,.0f} fixes/s; events {dict(pro_events)}"
    )
    # Check rounds (untimed, deterministic on a seed): one fix per shopper per round, some of
    # them spoofed, so that verdicts and events can be compared between engine versions.
    check_verdicts, check_events, check_errors = Counter(), Counter(), Counter()
    for _ in range(args.check_rounds):
        for start in range(0, len(ids), args.batch):
            batches = []
            latest = 0.0
            for i in range(start, min(start + args.batch, len(ids))):
                fix = spoofed(Fix(*walkers[i].step(rng)), rng)
                latest = max(latest, fix.recorded_at)
                batches.append((ids[i], [fix]))
            clock.set(latest)
            tally(engine.record_many(batches), check_verdicts, check_events, check_errors)
    check_fixes = args.check_rounds * len(ids)
    if args.check_rounds:
        log(
            f"engine: {args.check_rounds} check rounds (seed {args.seed}): verdicts "
            f"{dict(sorted(check_verdicts.items()))}; events {dict(sorted(check_events.items()))}"
        )
    walk_counts = {
        "seed": args.seed,
        "prologue_events": dict(sorted(pro_events.items())),
        "check_rounds": args.check_rounds,
        "check_verdicts": dict(sorted(check_verdicts.items())),
        "check_events": dict(sorted(check_events.items())),
    }
    pro_fixes += check_fixes
    pro_verdicts += check_verdicts
    pro_events += check_events
    pro_errors += check_errors

    # Timed: round after round, each shopper's next single fix, `batch` shoppers per call.
    order = list(range(len(ids)))
    rng.shuffle(order)
    verdicts, events, errors = Counter(), Counter(), Counter()
    fixes_done = calls = 0
    in_api = 0.0
    me = psutil.Process()
    procs = {"bench_process": me, "redis": psutil.Process(redis_pid)}
    profiler = spy = None
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
        if find_py_spy():
            # A sampling profiler outside the process: the figures stay nearly unchanged.
            spy = subprocess.Popen(
                [
                    find_py_spy(),
                    "record",
                    "-p",
                    str(os.getpid()),
                    "-r",
                    "250",
                    "-d",
                    str(max(1, int(args.duration))),
                    "-f",
                    "raw",
                    "--nonblocking",
                    "-o",
                    str(profile_dir / "engine.txt"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            time.sleep(0.5)
        else:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.001)
            profiler.start()
    log(
        f"engine: timed run, {args.duration:g}s, batches of {args.batch} shoppers per "
        f"record_many call"
    )
    cpu0 = cpu_seconds(procs)
    wall0 = time.perf_counter()
    deadline = wall0 + args.duration
    pos = 0
    while time.perf_counter() < deadline:
        chunk = order[pos : pos + args.batch]
        pos += args.batch
        if pos >= len(order):
            pos = 0
        batches = []
        latest = 0.0
        for i in chunk:
            fix = Fix(*walkers[i].step(rng))
            latest = max(latest, fix.recorded_at)
            batches.append((ids[i], [fix]))
        clock.set(latest)
        t = time.perf_counter()
        out = engine.record_many(batches)
        in_api += time.perf_counter() - t
        fixes_done += len(batches)
        calls += 1
        tally(out, verdicts, events, errors)
    wall = time.perf_counter() - wall0
    cpu = cpu_percent(cpu0, cpu_seconds(procs), wall)
    if spy is not None:
        _, err = spy.communicate(timeout=args.duration + 30.0)
        out = profile_dir / "engine.txt"
        if out.exists():
            log(f"engine: py-spy profile of this process in {out}\n" + summarize_collapsed(out))
        else:
            log(f"engine: py-spy failed: {err.decode(errors='replace')[-500:]}")
    if profiler is not None:
        profiler.stop()
        (profile_dir / "engine.html").write_text(profiler.output_html())
        text = profiler.output_text(unicode=False, color=False)
        (profile_dir / "engine.txt").write_text(text)
        log(
            f"engine: pyinstrument profile written to {profile_dir}/engine.html and engine.txt "
            "(pyinstrument slows the engine down ~2x; figures are not comparable)"
        )
    accepted = accepted_of(verdicts)
    rate = accepted / in_api if in_api else 0.0
    log(
        f"engine, batched: {fixes_done} fixes in {calls} record_many calls, {accepted} "
        f"accepted; {rate:,.0f} accepted fixes/s inside record_many "
        f"({fixes_done / wall:,.0f} fixes/s counting fix generation); CPU % of a core: {cpu}"
    )
    log(
        f"engine: verdicts {dict(verdicts)}; events {dict(events)}"
        + (f"; errors {dict(errors)}" if errors else "")
    )
    # CPU per fix: this process (the engine's Python, plus ~5 % fix generation) and the Redis
    # server. One caller waits for Redis on every round trip, so the two add up to the wall time.
    per_fix = {
        name: round(cpu[name] / 100.0 * wall / fixes_done * 1e6, 1)
        for name in ("bench_process", "redis")
        if name in cpu and fixes_done
    }
    log(f"engine: CPU per fix (us): {per_fix}")
    batched_stream_len = stream_length(r)
    single = run_engine_single(r, redis_pid, ids, walkers, args, rng, profile_dir)
    return {
        "fixes_per_s": single["accepted_per_s"],
        "batched_fixes_per_s": rate,
        "single": single,
        "accepted": accepted,
        "ignored": fixes_done - accepted - sum(errors.values()),
        "refused": sum(errors.values()),
        "batched_stream_len": batched_stream_len,
        "cpu_us_per_fix": per_fix,
        "loop_fixes_per_s": fixes_done / wall,
        "fixes": fixes_done,
        "calls": calls,
        "verdicts": dict(verdicts),
        "events": dict(events),
        "errors": dict(errors),
        "cpu": cpu,
        "prologue": {
            "fixes": pro_fixes,
            "fixes_per_s": round(pro_fixes / pro_wall, 1),
            "events": dict(pro_events),
            "verdicts": dict(pro_verdicts),
            "errors": dict(pro_errors),
        },
        "stream_len": stream_length(r),
        "walk_counts": walk_counts,
    }


def spoofed(fix, rng: random.Random):
    """Return the fix, or (about 4 % of the time) a spoofed or poor copy of it: a mock
    location, a 20 km jump, a phone-reported car speed, or a coarse accuracy."""
    from dataclasses import replace

    x = rng.random()
    if x < 0.01:
        return replace(fix, mock=True)
    if x < 0.02:
        return replace(fix, lat=fix.lat + 0.18)
    if x < 0.03:
        return replace(fix, speed_mps=70.0)
    if x < 0.04:
        return replace(fix, accuracy_m=400.0)
    return fix


def run_engine_single(
    r,
    redis_pid: int,
    ids: list[str],
    walkers: list[Walker],
    args,
    rng: random.Random,
    profile_dir: Path | None = None,
) -> dict:
    """Run the production path in a gevent process of its own (see single_main)."""
    spec = {
        "redis_url": "redis://{host}:{port}/0".format(**r.connection_pool.connection_kwargs),
        "redis_pid": redis_pid,
        "ids": ids,
        "walkers": [w.to_list() for w in walkers],
        "seed": rng.randrange(1 << 30),
        "duration": args.duration,
        "batch": args.batch,
        "concurrency": args.concurrency,
        "profile": str(profile_dir / "engine_single.txt")
        if profile_dir and find_py_spy()
        else None,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(spec, f)
    try:
        log(
            f"engine: timed run, {args.duration:g}s, record_fixes one shopper per call from "
            f"{args.concurrency} concurrent greenlets (a gevent process, as a gunicorn worker)"
        )
        proc = subprocess.run(
            [sys.executable, __file__, "--_single", f.name],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=args.duration + 300,
        )
    finally:
        os.unlink(f.name)
    if proc.returncode != 0:
        raise RuntimeError(f"the single-shopper engine run failed:\n{proc.stderr[-4000:]}")
    single = json.loads(proc.stdout.strip().splitlines()[-1])
    if spec["profile"] and Path(spec["profile"]).exists():
        log(
            f"engine, one shopper per call: py-spy profile in {spec['profile']}\n"
            + summarize_collapsed(Path(spec["profile"]))
        )
    log(
        f"engine, one shopper per call: {single['fixes']} fixes, {single['accepted']} accepted, "
        f"{single['ignored']} ignored, {single['refused']} refused; "
        f"{single['accepted_per_s']:,.0f} accepted fixes/s; CPU % of a core: {single['cpu']}"
    )
    return single


def single_main(spec_path: str) -> int:
    """The production path: LocationEngine.record_fixes, one shopper and one fix per call, from
    `concurrency` greenlets at once on the app's own Redis client (a bounded pool), as a gunicorn
    gevent worker runs POST /api/location/fix. Prints one JSON object."""
    from gevent import monkey

    monkey.patch_all()
    import gevent.pool
    import psutil

    from app.extensions import make_redis
    from core.clock import FrozenClock
    from geo.engine import EngineSettings, Fix, LocationEngine
    from geo.stores import StoreCatalog

    spec = json.loads(Path(spec_path).read_text())
    rng = random.Random(spec["seed"])
    ids = spec["ids"]
    walkers = [Walker.from_list(w) for w in spec["walkers"]]
    clock = FrozenClock(max(w.t for w in walkers))
    r = make_redis(spec["redis_url"])
    engine = LocationEngine(r, StoreCatalog(r, clock), clock, EngineSettings())
    engine.warm()
    pool = gevent.pool.Pool(spec["concurrency"])
    verdicts, events, errors = Counter(), Counter(), Counter()
    order = list(range(len(ids)))
    rng.shuffle(order)
    batch = spec["batch"]

    def one(item: tuple[str, Fix]) -> tuple[str, object]:
        shopper_id, fix = item
        try:
            return shopper_id, engine.record_fixes(shopper_id, [fix])
        except Exception as exc:  # a DomainError: the fix was refused
            return shopper_id, exc

    procs = {"engine_process": psutil.Process(), "redis": psutil.Process(spec["redis_pid"])}
    # First contact (untimed into the figure): one fix of every shopper, so that the timed run
    # sees what a worker sees in steady state, shoppers it served before (a phone sends a fix
    # every few seconds). A process's first fix of a shopper reads the state first.
    first = {"verdicts": Counter(), "events": Counter(), "errors": Counter()}
    t = time.perf_counter()
    for start in range(0, len(order), batch):
        items = [(ids[i], Fix(*walkers[i].step(rng))) for i in order[start : start + batch]]
        clock.set(max(fix.recorded_at for _, fix in items))
        tally_outcomes(dict(pool.imap_unordered(one, items)), *first.values())
    first_s = time.perf_counter() - t
    spy = None
    if spec.get("profile"):
        # py-spy on this process, over the timed run only (it stops after `duration`).
        spy = subprocess.Popen(
            [find_py_spy(), "record", "-p", str(os.getpid()), "-r", "250", "-d"]
            + [str(max(1, int(spec["duration"]))), "-f", "raw", "--nonblocking"]
            + ["-o", spec["profile"]],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)
    cpu0 = cpu_seconds(procs)
    wall0 = time.perf_counter()
    deadline = wall0 + spec["duration"]
    in_api = 0.0
    fixes = pos = 0
    while time.perf_counter() < deadline:
        chunk = order[pos : pos + batch]
        pos = 0 if pos + batch >= len(order) else pos + batch
        items = [(ids[i], Fix(*walkers[i].step(rng))) for i in chunk]
        clock.set(max(fix.recorded_at for _, fix in items))
        t = time.perf_counter()
        out = dict(pool.imap_unordered(one, items))
        in_api += time.perf_counter() - t
        fixes += len(items)
        tally_outcomes(out, verdicts, events, errors)
    wall = time.perf_counter() - wall0
    cpu = cpu_percent(cpu0, cpu_seconds(procs), wall)
    if spy is not None:
        spy.wait(timeout=spec["duration"] + 30.0)
    r.close()
    accepted = accepted_of(verdicts)
    refused = sum(errors.values())
    print(
        json.dumps(
            {
                "accepted_per_s": accepted / in_api if in_api else 0.0,
                "fixes": fixes,
                "accepted": accepted,
                "ignored": fixes - accepted - refused,
                "refused": refused,
                "verdicts": dict(verdicts),
                "events": dict(events),
                "errors": dict(errors),
                "concurrency": spec["concurrency"],
                "first_contact": {
                    "fixes_per_s": round(len(ids) / first_s, 1),
                    **{name: dict(counts) for name, counts in first.items()},
                },
                "cpu": cpu,
            }
        )
    )
    return 0


# -- HTTP: accounts, gunicorn, load generators -----------------------------------------------
def http_start_time(now: float) -> float:
    """Pick a simulated start between 23 h and 1 h ago that is daytime in Shanghai.

    The server judges recorded_at against its real clock (no older than 24 h, no more than
    5 min ahead), and the stores' opening hours decide whether fences fire.
    """
    for k in range(23 * 4):
        t = now - 3600.0 - 900.0 * k
        if 11 <= datetime.fromtimestamp(t, SHANGHAI).hour < 19:
            return t
    return now - 3600.0


def make_http_shoppers(
    redis_url: str, tmp: Path, walkers: list[Walker], args, rng: random.Random
) -> list[str]:
    """Create one shopper account per walk, with a session and consent; return their tokens.

    Each shopper's phone then uploads its buffered backlog through an in-process engine (as
    in the engine part), so that the HTTP run sees shoppers with a history, not first fixes.
    """
    from app import create_app
    from config import TestConfig
    from geo.engine import Fix

    # The passwords are never checked here: hash them as cheaply as argon2 allows.
    app = create_app(
        TestConfig(
            REDIS_URL=redis_url,
            SECRET_KEY=SECRET_KEY,
            VAR_DIR=tmp / "var",
            PASSWORD_HASH_TIME_COST=1,
            PASSWORD_HASH_MEMORY_KIB=64,
        )
    )
    accounts, engine = app.extensions["accounts"], app.extensions["geo"]
    tokens, ids = [], []
    for i in range(len(walkers)):
        user = accounts.create_user(f"bench-shopper-{i}@example.test", PASSWORD, "shopper")
        tokens.append(accounts.open_session(user)["token"])
        engine.set_consent(user["id"], True)
        ids.append(user["id"])
    events: Counter = Counter()
    for start in range(0, len(ids), args.batch):
        batches = [
            (ids[i], [Fix(*walkers[i].step(rng)) for _ in range(args.backlog)])
            for i in range(start, min(start + args.batch, len(ids)))
        ]
        for outcome in engine.record_many(batches).values():
            if isinstance(outcome, Exception):
                raise outcome
            events.update(e["kind"] for res in outcome for e in res.events)
    log(f"http: prologue of {args.backlog} buffered fixes per shopper; events {dict(events)}")
    app.extensions["redis"].close()
    return tokens


def run_load(
    mode: str,
    port: int,
    tmp: Path,
    args,
    duration: float,
    procs: dict,
    shoppers: list | None = None,
    profile_dir: Path | None = None,
) -> dict:
    """Run the load generators against one endpoint; return rate, latency, CPU."""
    import psutil

    n_procs = max(1, args.load_procs)
    start_at = time.time() + 1.0 + 0.3 * n_procs  # every generator has connected by then
    warmup = args.http_warmup
    specs = []
    for k in range(n_procs):
        conns = args.connections // n_procs + (1 if k < args.connections % n_procs else 0)
        spec = {
            "mode": mode,
            "port": port,
            "connections": max(1, conns),
            "start_at": start_at,
            "warmup": warmup,
            "duration": duration,
            "seed": args.seed * 1000 + k,
            "shoppers": shoppers[k::n_procs] if shoppers else [],
        }
        path = tmp / f"load-{mode}-{k}.json"
        path.write_text(json.dumps(spec))
        specs.append(path)
    gens = [
        subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--_loadgen", str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        for path in specs
    ]
    spy = None
    try:
        watched = dict(procs)
        for k, gen in enumerate(gens):
            watched[f"loadgen{k}"] = psutil.Process(gen.pid)
        time.sleep(max(0.0, start_at + warmup - time.time()))
        if profile_dir is not None and find_py_spy():
            profile_dir.mkdir(parents=True, exist_ok=True)
            out = profile_dir / f"http_{mode}.txt"
            spy = subprocess.Popen(
                [
                    find_py_spy(),
                    "record",
                    "-p",
                    str(procs["server"].pid),
                    "-r",
                    "250",
                    "-d",
                    str(max(1, int(duration))),
                    "-f",
                    "raw",
                    "--nonblocking",
                    "-o",
                    str(out),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        cpu0 = cpu_seconds(watched)
        w0 = time.perf_counter()
        time.sleep(max(0.0, start_at + warmup + duration - time.time()))
        cpu = cpu_percent(cpu0, cpu_seconds(watched), time.perf_counter() - w0)
        results = []
        for gen in gens:
            stdout, stderr = gen.communicate(timeout=duration + warmup + 60.0)
            if gen.returncode != 0 or not stdout.strip():
                raise RuntimeError(
                    f"load generator failed ({gen.returncode}): "
                    f"{stderr.decode(errors='replace')[-2000:]}"
                )
            results.append(json.loads(stdout.decode().strip().splitlines()[-1]))
        if spy is not None:
            _, err = spy.communicate(timeout=duration + 30.0)
            out = profile_dir / f"http_{mode}.txt"
            if out.exists():
                log(
                    f"http {mode}: py-spy profile of the gunicorn worker in {out}\n"
                    + summarize_collapsed(out)
                )
            else:
                log(f"http {mode}: py-spy failed: {err.decode(errors='replace')[-500:]}")
    finally:
        for gen in gens:
            stop_process(gen, timeout=5.0)
        if spy is not None:
            stop_process(spy, timeout=5.0)
    statuses: Counter = Counter()
    verdicts: Counter = Counter()
    events: Counter = Counter()
    latencies: list[float] = []
    reconnects = 0
    for res in results:
        statuses.update(res["statuses"])
        verdicts.update(res["verdicts"])
        events.update(res["events"])
        latencies.extend(res["lat_ms"])
        reconnects += res["reconnects"]
    latencies.sort()
    ok = statuses.get("200", 0)

    def pct(q: float) -> float:
        return (
            round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 2)
            if latencies
            else 0.0
        )

    # Server CPU per answered request: unlike req/s, hardly moved by other programs taking CPU.
    cpu_ms = round(cpu.get("server", 0.0) * 10.0 / (ok / duration), 3) if ok else None
    return {
        "per_s": ok / duration,
        "requests": sum(statuses.values()),
        "ok": ok,
        "server_cpu_ms_per_request": cpu_ms,
        "statuses": dict(statuses),
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": round(latencies[-1], 2) if latencies else 0.0,
        "verdicts": dict(verdicts),
        "events": dict(events),
        "reconnects": reconnects,
        "cpu": cpu,
        "load_procs": n_procs,
        "connections": args.connections,
    }


def send_one_fix(port: int, token: str, walker: Walker, rng: random.Random) -> float:
    """POST one fix with http.client; return the latency in ms (raise unless 200)."""
    import http.client

    body = _FIX_BODY % walker.step(rng)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60.0)
    try:
        t = time.perf_counter()
        conn.request(
            "POST",
            "/api/location/fix",
            body=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        response = conn.getresponse()
        answer = response.read()
        elapsed = (time.perf_counter() - t) * 1000.0
    finally:
        conn.close()
    if response.status != 200:
        raise RuntimeError(f"POST /api/location/fix answered {response.status}: {answer[:500]!r}")
    return elapsed


def run_http(
    r, server, tmp: Path, stores: list[dict], args, rng: random.Random, profile_dir: Path | None
) -> dict:
    """Measure GET /healthz (the ceiling) and POST /api/location/fix through gunicorn."""
    import psutil

    from app.redis_supervisor import free_port
    from geo import keys

    # Simulated time runs from a recent Shanghai daytime: the server's real clock accepts it.
    t0 = http_start_time(time.time())
    walkers = make_walkers(stores, args.http_shoppers, rng, t0, args.nanjing_share)
    sock_walkers = make_walkers(stores, args.socket_clients, rng, t0, args.nanjing_share)
    t = time.perf_counter()
    tokens = make_http_shoppers(server.url, tmp, walkers + sock_walkers, args, rng)
    tokens, sock_tokens = tokens[: len(walkers)], tokens[len(walkers) :]
    log(
        f"http: {len(tokens)} shopper accounts with sessions, consent and history in "
        f"{time.perf_counter() - t:.2f}s"
    )
    # The pending-exit index holds deadlines in simulated time, all long past for the server's
    # sweeper (a background greenlet in the worker). Left there, the sweeper would work through
    # thousands of them during the measurements. New ones (from the HTTP fixes) stay.
    for k in range(keys.EVENT_PARTITIONS):
        r.delete(keys.pending_exits(k))
    hello_rate = None
    if args.calibrate:
        port = free_port()
        hello = start_gunicorn(tmp, server.url, port, hello=True)
        try:
            worker = psutil.Process(hello.pid).children()[0]
            res = run_load("healthz", port, tmp, args, args.http_duration, {"server": worker})
            hello_rate = res["per_s"]
            log(
                f"http: calibration, plain Flask hello under the same gunicorn: "
                f"{hello_rate:,.0f} req/s, p50 {res['p50_ms']} ms, CPU % of a core {res['cpu']}"
            )
        finally:
            stop_process(hello, group=True)
    port = free_port()
    gunicorn = start_gunicorn(tmp, server.url, port)
    try:
        master = psutil.Process(gunicorn.pid)
        workers = master.children()
        if len(workers) != 1:
            raise RuntimeError(f"expected one gunicorn worker, found {len(workers)}")
        procs = {"server": workers[0], "redis": psutil.Process(server.process.pid)}
        log(
            f"http: gunicorn -k gevent -w 1 on 127.0.0.1:{port} (worker pid {workers[0].pid}); "
            f"{args.connections} keep-alive connections from {args.load_procs} load process(es)"
        )
        ceiling = run_load(
            "healthz", port, tmp, args, args.http_duration, procs, profile_dir=profile_dir
        )
        log(
            f"http: GET /healthz {ceiling['per_s']:,.0f} req/s, p50 {ceiling['p50_ms']} ms, "
            f"p99 {ceiling['p99_ms']} ms, statuses {ceiling['statuses']}, CPU % of a core "
            f"{ceiling['cpu']}, server CPU {ceiling['server_cpu_ms_per_request']} ms/request"
        )
        # One fix alone first: the worker loads its fence cache on its first fix (~0.5 s for
        # 5,000 stores). Under load, every greenlet that arrives meanwhile loads it again (see
        # README), which would turn the first seconds of the measurement into a stall.
        cold_ms = send_one_fix(port, tokens[0], walkers[0], rng)
        log(f"http: first (cold) fix answered in {cold_ms:.0f} ms")
        shoppers = [[tok, w.to_list()] for tok, w in zip(tokens, walkers, strict=True)]
        fixes = run_load(
            "fix", port, tmp, args, args.http_duration, procs, shoppers, profile_dir=profile_dir
        )
        log(
            f"http: POST /api/location/fix {fixes['per_s']:,.0f} req/s, p50 {fixes['p50_ms']} "
            f"ms, p99 {fixes['p99_ms']} ms, statuses {fixes['statuses']}, CPU % of a core "
            f"{fixes['cpu']}, server CPU {fixes['server_cpu_ms_per_request']} ms/request"
        )
        log(f"http: verdicts {fixes['verdicts']}; events {fixes['events']}")
        sock = (
            None
            if args.only == "http"
            else run_sockets(
                port,
                tmp,
                args,
                procs,
                [[tok, w.to_list()] for tok, w in zip(sock_tokens, sock_walkers, strict=True)],
                profile_dir,
            )
        )
        if sock is not None:
            log(
                f"socket /shopper: {sock['per_s']:,.0f} fixes/s from {sock['clients']} "
                f"python-socketio clients, p50 {sock['p50_ms']} ms, p99 {sock['p99_ms']} ms, "
                f"errors {sock['errors']}, CPU % of a core {sock['cpu']}, "
                f"server CPU {sock['server_cpu_ms_per_fix']} ms/fix"
            )
            log(f"socket: verdicts {sock['verdicts']}; events {sock['events']}")
        for name, res in (("healthz", ceiling), ("fix", fixes)):
            bad = res["requests"] - res["ok"]
            if bad > 0.01 * max(1, res["requests"]):
                log(f"http: WARNING {bad} of {res['requests']} {name} answers were not 200")
            if res["reconnects"]:
                log(f"http: {res['reconnects']} reconnects during {name}")
    finally:
        stop_process(gunicorn, group=True)
    return {
        "ceiling": ceiling,
        "fix": fixes,
        "socket": sock,
        "shoppers": len(tokens),
        "cold_fix_ms": cold_ms,
        "flask_hello_per_s": hello_rate,
    }


def run_sockets(
    port: int, tmp: Path, args, procs: dict, shoppers: list, profile_dir: Path | None
) -> dict:
    """Send fixes as `location` events on /shopper from real python-socketio clients (one
    per shopper, each waiting for its ack before the next fix), spread over load processes."""
    n_procs = max(1, args.load_procs)
    start_at = time.time() + 3.0 + 0.01 * len(shoppers)  # every client has connected by then
    warmup, duration = args.http_warmup, args.http_duration
    gens = []
    for k in range(n_procs):
        path = tmp / f"sock-{k}.json"
        spec = {
            "port": port,
            "start_at": start_at,
            "warmup": warmup,
            "duration": duration,
            "seed": args.seed * 1000 + 500 + k,
            "shoppers": shoppers[k::n_procs],
        }
        path.write_text(json.dumps(spec))
        gens.append(
            subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "--_sockgen", str(path)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        )
    spy = None
    try:
        import psutil

        watched = dict(procs)
        for k, gen in enumerate(gens):
            watched[f"sockgen{k}"] = psutil.Process(gen.pid)
        time.sleep(max(0.0, start_at + warmup - time.time()))
        if profile_dir is not None and find_py_spy():
            spy = subprocess.Popen(
                [
                    find_py_spy(),
                    "record",
                    "-p",
                    str(procs["server"].pid),
                    "-r",
                    "250",
                    "-d",
                    str(max(1, int(duration))),
                    "-f",
                    "raw",
                    "--nonblocking",
                    "-o",
                    str(profile_dir / "socket_fix.txt"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        cpu0 = cpu_seconds(watched)
        w0 = time.perf_counter()
        time.sleep(max(0.0, start_at + warmup + duration - time.time()))
        cpu = cpu_percent(cpu0, cpu_seconds(watched), time.perf_counter() - w0)
        results = []
        for gen in gens:
            stdout, stderr = gen.communicate(timeout=duration + warmup + 120.0)
            if gen.returncode != 0 or not stdout.strip():
                raise RuntimeError(
                    f"socket load generator failed ({gen.returncode}): "
                    f"{stderr.decode(errors='replace')[-2000:]}"
                )
            results.append(json.loads(stdout.decode().strip().splitlines()[-1]))
        if spy is not None:
            spy.communicate(timeout=duration + 30.0)
            out = profile_dir / "socket_fix.txt"
            if out.exists():
                log(
                    f"socket: py-spy profile of the gunicorn worker in {out}\n"
                    + summarize_collapsed(out)
                )
    finally:
        for gen in gens:
            stop_process(gen, timeout=5.0)
        if spy is not None:
            stop_process(spy, timeout=5.0)
    verdicts: Counter = Counter()
    events: Counter = Counter()
    errors: Counter = Counter()
    latencies: list[float] = []
    for res in results:
        verdicts.update(res["verdicts"])
        events.update(res["events"])
        errors.update(res["errors"])
        latencies.extend(res["lat_ms"])
    latencies.sort()
    ok = len(latencies)

    def pct(q: float) -> float:
        return round(latencies[min(ok - 1, int(q * ok))], 2) if ok else 0.0

    cpu_ms = round(cpu.get("server", 0.0) * 10.0 / (ok / duration), 3) if ok else None
    return {
        "per_s": ok / duration,
        "fixes": ok,
        "clients": len(shoppers),
        "server_cpu_ms_per_fix": cpu_ms,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "verdicts": dict(verdicts),
        "events": dict(events),
        "errors": dict(errors),
        "cpu": cpu,
    }


def sockgen_main(spec_path: str) -> int:
    """One python-socketio client per shopper on /shopper (websocket transport), each in its
    own thread sending a fix and waiting for the ack, again and again; prints one JSON object."""
    import threading

    import socketio

    spec = json.loads(Path(spec_path).read_text())
    url = f"http://127.0.0.1:{spec['port']}"
    begin = spec["start_at"] + spec["warmup"]
    end = begin + spec["duration"]
    lock = threading.Lock()
    lat_ms: list[float] = []
    verdicts: Counter = Counter()
    events: Counter = Counter()
    errors: Counter = Counter()
    clients = []
    for token, _walk in spec["shoppers"]:
        sio = socketio.Client(reconnection=False)
        sio.connect(
            url,
            transports=["websocket"],
            namespaces=["/shopper"],
            auth={"token": token},
            wait_timeout=10,
        )
        clients.append(sio)

    def drive(k: int, sio, walker: Walker) -> None:
        rng = random.Random(spec["seed"] * 100_000 + k)
        time.sleep(max(0.0, spec["start_at"] - time.time()))
        while time.time() < end:
            lat, lon, acc, t, speed = walker.step(rng)
            payload = {"lat": lat, "lon": lon, "accuracy_m": acc, "recorded_at": t}
            payload["speed_mps"] = speed
            sent = time.perf_counter()
            ack = sio.call("location", payload, namespace="/shopper", timeout=60)
            done = time.perf_counter()
            if not begin <= time.time() < end:
                continue
            with lock:
                if isinstance(ack, dict) and "results" in ack:
                    lat_ms.append((done - sent) * 1000.0)
                    for res in ack["results"]:
                        verdicts[res["verdict"]] += 1
                        for event in res["events"]:
                            events[event["kind"]] += 1
                else:
                    code = ack.get("error", {}).get("code") if isinstance(ack, dict) else None
                    errors[str(code)] += 1

    threads = [
        threading.Thread(target=drive, args=(k, sio, Walker.from_list(walk)), daemon=True)
        for k, (sio, (_token, walk)) in enumerate(zip(clients, spec["shoppers"], strict=True))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for sio in clients:
        sio.disconnect()
    print(
        json.dumps(
            {
                "lat_ms": [round(x, 3) for x in lat_ms],
                "verdicts": dict(verdicts),
                "events": dict(events),
                "errors": dict(errors),
            }
        )
    )
    return 0


def run_healthz_only(server, tmp: Path, args, profile_dir: Path | None) -> dict:
    """Measure a plain Flask hello, then the app's GET /healthz, same gunicorn and load generator.

    The web layer's fixed cost per request (`--only healthz`): no engine part, no fixes. With
    `--rounds N` the two alternate N times and each keeps its best round (other programs on a
    shared machine only ever slow a round down); the ratio compares the two best rounds.
    """
    import psutil

    from app.redis_supervisor import free_port

    rounds: dict[str, list[dict]] = {"hello": [], "healthz": []}
    for k in range(max(1, args.rounds)):
        for name, hello in (("hello", True), ("healthz", False)):
            port = free_port()
            proc = start_gunicorn(tmp, server.url, port, hello=hello)
            try:
                procs = {"server": psutil.Process(proc.pid).children()[0]}
                if not hello:
                    procs["redis"] = psutil.Process(server.process.pid)
                res = run_load(
                    "healthz",
                    port,
                    tmp,
                    args,
                    args.http_duration,
                    procs,
                    profile_dir=None if profile_dir is None or k else profile_dir / name,
                )
            finally:
                stop_process(proc, group=True)
            log(
                f"http: round {k + 1} {name}: {res['per_s']:,.0f} req/s, p50 {res['p50_ms']} ms, "
                f"p99 {res['p99_ms']} ms, statuses {res['statuses']}, CPU % of a core "
                f"{res['cpu']}, server CPU {res['server_cpu_ms_per_request']} ms/request"
            )
            rounds[name].append(res)
    out = {name: max(runs, key=lambda res: res["per_s"]) for name, runs in rounds.items()}
    hello_rate, healthz_rate = out["hello"]["per_s"], out["healthz"]["per_s"]
    return {
        "bench": "geo",
        "only": "healthz",
        "flask_hello_per_s": round(hello_rate, 1),
        "http_ceiling_per_s": round(healthz_rate, 1),
        "healthz_to_flask_hello": round(healthz_rate / hello_rate, 3) if hello_rate else 0.0,
        "server_cpu_ms_per_request": {
            name: res["server_cpu_ms_per_request"] for name, res in out.items()
        },
        "rounds_per_s": {
            name: [round(res["per_s"], 1) for res in runs] for name, runs in rounds.items()
        },
        "p50_ms": {name: res["p50_ms"] for name, res in out.items()},
        "p99_ms": {name: res["p99_ms"] for name, res in out.items()},
        "statuses": {name: res["statuses"] for name, res in out.items()},
        "cpu": {name: res["cpu"] for name, res in out.items()},
        "connections": args.connections,
        "duration_s": args.http_duration,
        "rounds": max(1, args.rounds),
        "quick": args.quick,
    }


# -- the load generator (a separate process) -------------------------------------------------
_VERDICT_RE = re.compile(rb'"verdict": ?"(\w+)"')
_KIND_RE = re.compile(rb'"kind": ?"(\w+)"')
_FIX_BODY = b'{"lat":%.7f,"lon":%.7f,"accuracy_m":%.1f,"recorded_at":%.3f,"speed_mps":%.2f}'


class _Conn:
    __slots__ = ("sock", "buf", "sent", "group", "gi", "req")

    def __init__(self) -> None:
        self.sock: socket.socket | None = None
        self.buf = b""
        self.sent = 0.0
        self.group: list = []
        self.gi = 0
        self.req = b""


def loadgen_main(spec_path: str) -> int:
    """Keep `connections` HTTP/1.1 keep-alive connections busy, one request in flight on each.

    One epoll loop over plain blocking sockets (recv only when readable), requests built as
    bytes, responses framed by Content-Length: a few microseconds of Python per request.
    Each connection owns a disjoint group of shoppers, so a shopper never has two fixes in
    flight and its fixes arrive in recorded order.
    """
    spec = json.loads(Path(spec_path).read_text())
    mode, port = spec["mode"], spec["port"]
    rng = random.Random(spec["seed"])
    n = spec["connections"]
    host = f"127.0.0.1:{port}".encode()
    if mode == "healthz":
        fixed = b"GET /healthz HTTP/1.1\r\nHost: %s\r\nAccept: */*\r\n\r\n" % host
    else:
        head = (
            b"POST /api/location/fix HTTP/1.1\r\nHost: "
            + host
            + b"\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n"
        )
        shoppers = [(tok.encode(), Walker.from_list(w)) for tok, w in spec["shoppers"]]
        n = max(1, min(n, len(shoppers)))

    sel = selectors.DefaultSelector()
    conns = [_Conn() for _ in range(n)]
    for j, c in enumerate(conns):
        if mode != "healthz":
            c.group = shoppers[j::n]

    def connect(c: _Conn) -> None:
        if c.sock is not None:
            sel.unregister(c.sock)
            c.sock.close()
        sock = socket.create_connection(("127.0.0.1", port), timeout=10.0)
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.sock, c.buf = sock, b""
        sel.register(sock, selectors.EVENT_READ, c)

    def next_request(c: _Conn) -> bytes:
        if mode == "healthz":
            return fixed
        token, walker = c.group[c.gi]
        c.gi = (c.gi + 1) % len(c.group)
        body = _FIX_BODY % walker.step(rng)
        return head % (token, len(body)) + body

    for c in conns:
        connect(c)
    begin = spec["start_at"] + spec["warmup"]
    end = begin + spec["duration"]
    time.sleep(max(0.0, spec["start_at"] - time.time()))
    cpu0, wall0 = time.process_time(), time.perf_counter()
    perf = time.perf_counter
    for c in conns:
        c.req = next_request(c)
        c.sent = perf()
        c.sock.sendall(c.req)
    lat_ms: list[float] = []
    statuses: Counter = Counter()
    verdicts: Counter = Counter()
    events: Counter = Counter()
    reconnects = 0
    count_bodies = mode == "fix"
    now = time.time()
    while now < end:
        ready = sel.select(0.2)
        now = time.time()
        counting = begin <= now < end
        for key, _ in ready:
            c = key.data
            try:
                data = c.sock.recv(262144)
            except OSError:
                data = b""
            if not data:  # the server closed: reconnect and send the same request again
                reconnects += 1
                connect(c)
                c.sent = perf()
                c.sock.sendall(c.req)
                continue
            buf = c.buf + data if c.buf else data
            he = buf.find(b"\r\n\r\n")
            if he < 0:
                c.buf = buf
                continue
            i = buf.find(b"Content-Length: ", 0, he)
            if i < 0:
                i = buf.lower().find(b"content-length: ", 0, he)
            length = int(buf[i + 16 : buf.find(b"\r\n", i)]) if i >= 0 else 0
            stop = he + 4 + length
            if len(buf) < stop:
                c.buf = buf
                continue
            done = perf()
            c.buf = buf[stop:]
            if counting:
                lat_ms.append((done - c.sent) * 1000.0)
                statuses[buf[9:12].decode()] += 1
                if count_bodies:
                    body = buf[he + 4 : stop]
                    for v in _VERDICT_RE.findall(body):
                        verdicts[v.decode()] += 1
                    for k in _KIND_RE.findall(body):
                        events[k.decode()] += 1
            if b"Connection: close" in buf[:he]:
                reconnects += 1
                connect(c)
            c.req = next_request(c)
            c.sent = perf()
            c.sock.sendall(c.req)
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    for c in conns:
        c.sock.close()
    print(
        json.dumps(
            {
                "count": len(lat_ms),
                "lat_ms": [round(x, 3) for x in lat_ms],
                "statuses": dict(statuses),
                "verdicts": dict(verdicts),
                "events": dict(events),
                "reconnects": reconnects,
                "cpu_pct": round(100.0 * cpu / wall, 1),
            }
        )
    )
    return 0


# -- main ------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--shoppers", type=int, default=10_000, help="shoppers for the engine part")
    p.add_argument("--stores", type=int, default=5_000, help="demo stores to import")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of timed engine run")
    p.add_argument(
        "--http-duration",
        type=float,
        default=10.0,
        help="seconds of each timed HTTP run (ceiling, then fixes)",
    )
    p.add_argument("--connections", type=int, default=64, help="keep-alive HTTP connections")
    p.add_argument("--load-procs", type=int, default=1, help="load-generator processes")
    p.add_argument(
        "--http-shoppers", type=int, default=2_000, help="shopper accounts sending fixes over HTTP"
    )
    p.add_argument(
        "--http-warmup",
        type=float,
        default=1.0,
        help="seconds of load before each HTTP measurement window",
    )
    p.add_argument("--batch", type=int, default=1_000, help="shoppers per record_many call")
    p.add_argument(
        "--concurrency",
        type=int,
        default=64,
        help="concurrent callers (greenlets) of the one-shopper-per-call engine run",
    )
    p.add_argument(
        "--backlog",
        type=int,
        default=12,
        help="buffered fixes each shopper uploads (untimed) before the timed runs",
    )
    p.add_argument(
        "--nanjing-share",
        type=float,
        default=0.3,
        help="share of shoppers starting on East Nanjing Road, Shanghai",
    )
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--check-rounds",
        type=int,
        default=8,
        help="untimed rounds of one fix per shopper (some spoofed) whose verdicts and events "
        "are printed to compare engine versions on a seed",
    )
    p.add_argument("--skip-http", action="store_true", help="run the engine part only")
    p.add_argument(
        "--only",
        choices=["healthz", "http"],
        default=None,
        help="healthz: only GET /healthz against a plain Flask hello (the web layer's fixed "
        "cost per request; no engine part, no fixes); http: only /healthz then POST "
        "/api/location/fix through gunicorn, in the same run (no engine part, no sockets: "
        "ratio_to_ceiling and the server CPU per request of each)",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="with --only healthz: alternate hello and healthz this many times, best of each",
    )
    p.add_argument(
        "--calibrate",
        action="store_true",
        help="also measure a plain Flask hello app under the same gunicorn and load "
        "generator (compare with the published Flask figure)",
    )
    p.add_argument(
        "--profile",
        metavar="DIR",
        type=Path,
        default=None,
        help="profile the timed engine run and the gunicorn worker with py-spy "
        "(collapsed stacks in DIR; pyinstrument for the engine without py-spy)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="small sizes for a smoke run of a few seconds (figures meaningless)",
    )
    p.add_argument(
        "--socket-clients",
        type=int,
        default=32,
        help="python-socketio clients (one shopper each) sending fixes on /shopper",
    )
    p.add_argument("--_loadgen", metavar="SPEC", help=argparse.SUPPRESS)
    p.add_argument("--_sockgen", metavar="SPEC", help=argparse.SUPPRESS)
    p.add_argument("--_single", metavar="SPEC", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.shoppers = min(args.shoppers, 300)
        args.stores = min(args.stores, 500)
        args.duration = min(args.duration, 1.0)
        args.http_duration = min(args.http_duration, 1.0)
        args.http_warmup = min(args.http_warmup, 0.3)
        args.connections = min(args.connections, 8)
        args.http_shoppers = min(args.http_shoppers, 50)
        args.batch = min(args.batch, 100)
        args.concurrency = min(args.concurrency, 16)
        args.backlog = min(args.backlog, 4)
        args.socket_clients = min(args.socket_clients, 8)
    if args.shoppers < 1 or args.stores < 1 or args.http_shoppers < 1 or args.connections < 1:
        p.error("sizes must be positive")
    return args


def http_only_result(http: dict, args) -> dict:
    """The last line of --only http: fixes over HTTP against /healthz, in the same run."""
    fix, ceiling = http["fix"], http["ceiling"]
    return {
        "bench": "geo",
        "only": "http",
        "http_fixes_per_s": round(fix["per_s"], 1),
        "http_ceiling_per_s": round(ceiling["per_s"], 1),
        "ratio_to_ceiling": round(fix["per_s"] / ceiling["per_s"], 3) if ceiling["per_s"] else 0.0,
        "server_cpu_ms_per_request": {
            "healthz": ceiling["server_cpu_ms_per_request"],
            "fix": fix["server_cpu_ms_per_request"],
        },
        "ratio_cpu_normalized": (
            round(ceiling["server_cpu_ms_per_request"] / fix["server_cpu_ms_per_request"], 3)
            if fix["server_cpu_ms_per_request"] and ceiling["server_cpu_ms_per_request"]
            else None
        ),
        "p50_ms": fix["p50_ms"],
        "p99_ms": fix["p99_ms"],
        "statuses": {"healthz": ceiling["statuses"], "fix": fix["statuses"]},
        "verdicts": fix["verdicts"],
        "events": fix["events"],
        "cpu": {"http_ceiling": ceiling["cpu"], "http_fix": fix["cpu"]},
        "stores": args.stores,
        "shoppers": http["shoppers"],
        "connections": args.connections,
        "duration_s": args.http_duration,
        "quick": args.quick,
        "profiled": str(args.profile) if args.profile is not None else None,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args._loadgen:
        return loadgen_main(args._loadgen)
    if args._single:
        return single_main(args._single)
    if args._sockgen:
        return sockgen_main(args._sockgen)

    def on_term(signum, frame):  # clean up the servers on SIGTERM as on Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    import redis

    from core.clock import Clock
    from geo.demo import generate_stores
    from geo.stores import StoreCatalog

    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="geo-bench-"))
    server = None
    try:
        server = start_redis(tmp)
        log(f"valkey on 127.0.0.1:{server.port} (AOF everysec, data in {tmp})")
        if args.only == "healthz":
            print(json.dumps(run_healthz_only(server, tmp, args, args.profile)))
            return 0
        r = redis.Redis.from_url(server.url, decode_responses=True)
        stores = generate_stores(args.stores)
        t = time.perf_counter()
        report = StoreCatalog(r, Clock()).import_rows(
            (f"stores[{i}]", dict(s)) for i, s in enumerate(stores)
        )
        if report.written != len(stores):
            raise RuntimeError(f"store import failed: {report.to_dict()['errors'][:3]}")
        import_s = time.perf_counter() - t
        log(
            f"imported {report.written} stores in {import_s:.2f}s "
            f"({sum(NANJING_MARK in s['address'] for s in stores)} on East Nanjing Road)"
        )
        if args.only == "http":
            http = run_http(r, server, tmp, stores, args, rng, args.profile)
            r.close()
            print(json.dumps(http_only_result(http, args)))
            return 0
        engine = run_engine(r, server.process.pid, stores, args, rng, args.profile)
        http = None
        if not args.skip_http:
            http = run_http(r, server, tmp, stores, args, rng, args.profile)
        r.close()
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    http_fix = http["fix"]["per_s"] if http else 0.0
    http_ceiling = http["ceiling"]["per_s"] if http else 0.0
    result = {
        "bench": "geo",
        "engine_fixes_per_s": round(engine["fixes_per_s"], 1),
        "engine_batched_fixes_per_s": round(engine["batched_fixes_per_s"], 1),
        "http_fixes_per_s": round(http_fix, 1),
        "http_ceiling_per_s": round(http_ceiling, 1),
        "ratio_to_ceiling": round(http_fix / http_ceiling, 3) if http_ceiling else 0.0,
        "p50_ms": http["fix"]["p50_ms"] if http else 0.0,
        "p99_ms": http["fix"]["p99_ms"] if http else 0.0,
        "socket_fixes_per_s": round(http["socket"]["per_s"], 1) if http else 0.0,
        "socket_ratio_to_ceiling": (
            round(http["socket"]["per_s"] / http_ceiling, 3) if http and http_ceiling else 0.0
        ),
        "engine_single_to_batched": (
            round(engine["fixes_per_s"] / engine["batched_fixes_per_s"], 3)
            if engine["batched_fixes_per_s"]
            else 0.0
        ),
        "walk_counts": engine["walk_counts"],
        "healthz_to_flask_hello": round(http_ceiling / http["flask_hello_per_s"], 3)
        if http and http.get("flask_hello_per_s")
        else None,
        "events": engine["single"]["events"],
        "verdicts": engine["single"]["verdicts"],
        "stores": args.stores,
        "shoppers": args.shoppers,
        "quick": args.quick,
        # Accepted fixes only in every rate; ignored and refused ones are counted apart.
        "engine": {
            "single": {
                k: v
                for k, v in engine["single"].items()
                if k not in {"accepted_per_s", "events", "verdicts"}
            },
            "batched": {
                k: engine[k]
                for k in ("fixes", "accepted", "ignored", "refused", "calls", "loop_fixes_per_s")
            }
            | {"batch": args.batch, "verdicts": engine["verdicts"], "events": engine["events"]},
            "errors": engine["errors"],
            "prologue": engine["prologue"],
            "stream_len_after_batched": engine["batched_stream_len"],
            "stream_len": engine["stream_len"],
            "duration_s": args.duration,
        },
        "http": None
        if http is None
        else {
            "shoppers": http["shoppers"],
            "connections": args.connections,
            "cold_fix_ms": round(http["cold_fix_ms"], 1),
            "flask_hello_per_s": http.get("flask_hello_per_s"),
            "load_procs": args.load_procs,
            "duration_s": args.http_duration,
            "ceiling": {k: http["ceiling"][k] for k in ("statuses", "p50_ms", "p99_ms")},
            "fix": {
                k: http["fix"][k]
                for k in ("statuses", "p90_ms", "max_ms", "verdicts", "events", "reconnects")
            },
            "socket": {k: v for k, v in http["socket"].items() if k != "cpu"},
        },
        "engine_cpu_us_per_fix": engine["cpu_us_per_fix"],
        "server_cpu_ms_per_request": None
        if http is None
        else {
            "healthz": http["ceiling"]["server_cpu_ms_per_request"],
            "fix": http["fix"]["server_cpu_ms_per_request"],
            "socket_fix": http["socket"]["server_cpu_ms_per_fix"],
        },
        "ratio_cpu_normalized": (
            round(
                http["ceiling"]["server_cpu_ms_per_request"]
                / http["fix"]["server_cpu_ms_per_request"],
                3,
            )
            if http
            and http["fix"]["server_cpu_ms_per_request"]
            and http["ceiling"]["server_cpu_ms_per_request"]
            else None
        ),
        "cpu": {
            "engine": engine["cpu"],
            "http_ceiling": http["ceiling"]["cpu"] if http else None,
            "http_fix": http["fix"]["cpu"] if http else None,
            "socket_fix": http["socket"]["cpu"] if http else None,
        },
    }
    if args.profile is not None:
        result["profiled"] = str(args.profile)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
