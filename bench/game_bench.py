"""Catch game throughput: Game.visible and Game.catch in one process, and both over HTTP.

Run from the repository root (see bench/README.md)::

    python bench/game_bench.py                # full run, about 1 min 45 s
    python -m bench.game_bench --quick        # smoke run, about 10 s (figures meaningless)
    python bench/game_bench.py --profile var/game-profile   # also py-spy both domain loops
    python bench/game_bench.py --skip-http --catch-processes 4   # then 4 callers throwing at once

Everything runs against real parts started here: a Valkey server (temp dir, free port,
127.0.0.1, AOF on with fsync every second as in production), 5,000 demo stores imported through
StoreCatalog.import_rows, a live campaign on the Shanghai stores with a game (8 species, one
wild spawn per cell and two per store per 15-minute slot, and a "game" offer so that store
catches issue coupons), 10,000 shoppers with consent walking around East Nanjing Road and
People's Square in simulated time (a FrozenClock; positions go through
LocationEngine.record_many), and for the HTTP figures a real `gunicorn -k gevent -w 1 wsgi:app`
loaded by a separate load-generator process.

Progress goes to stderr; the last line of stdout is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
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
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.geo_bench import cpu_percent, cpu_seconds, find_py_spy, stop_process  # noqa: E402

SHANGHAI = ZoneInfo("Asia/Shanghai")
PASSWORD = "bench-password-1"
COUPON_KEYS = [("bench", b"bench-coupon-signing-key-0123456789")]
CAP_HIGH = 1_000_000_000
M_PER_DEG = 111_320.0
# Where the shoppers walk: East Nanjing Road and People's Square, Shanghai.
BOX = (31.230, 121.470, 31.240, 121.490)  # min lat, min lon, max lat, max lon
NANJING_EAST = (31.2400, 121.4900)  # the Bund end of the pedestrian street
NANJING_WEST = (31.2350, 121.4750)  # the People's Square end
NANJING_SHARE = 0.4  # of the shoppers start on the pedestrian street itself
REACH_M = 70.0  # targets of a throw: spawns this close (the interaction radius is 80 m)
REFRESH_S = 60.0  # simulated seconds before a shopper's list of spawns is asked again
SPECIES = [
    {"id": "dumpling-imp", "name": "Dumpling Imp", "rarity": "common", "weight": 30},
    {"id": "tea-sprite", "name": "Tea Sprite", "rarity": "common", "weight": 25},
    {"id": "lantern-moth", "name": "Lantern Moth", "rarity": "common", "weight": 20},
    {"id": "bund-pigeon", "name": "Bund Pigeon", "rarity": "common", "weight": 15},
    {"id": "silk-fox", "name": "Silk Fox", "rarity": "rare", "weight": 6},
    {"id": "jade-koi", "name": "Jade Koi", "rarity": "rare", "weight": 4},
    {"id": "neon-dragon", "name": "Neon Dragon", "rarity": "epic", "weight": 1.5},
    {"id": "pearl-phoenix", "name": "Pearl Phoenix", "rarity": "legendary", "weight": 0.5},
]

_STARTED = time.monotonic()


def log(message: str) -> None:
    """Print a progress line to stderr."""
    print(
        f"[game-bench {time.monotonic() - _STARTED:6.1f}s] {message}", file=sys.stderr, flush=True
    )


def pct(values: list[float], q: float) -> float:
    """Return the q-quantile of sorted values (0.0 when empty)."""
    if not values:
        return 0.0
    return round(values[min(len(values) - 1, int(q * len(values)))], 3)


def domain_start(now: float) -> float:
    """Return the latest 11:05 in Shanghai at least an hour before `now`.

    The domain part runs on a FrozenClock from there: the stores are open, the two minutes of
    simulated time stay inside one 15-minute spawn slot (11:00-11:15), and the coupons issued
    then are still valid when the HTTP server (real clock) runs.
    """
    t = datetime.fromtimestamp(now - 3600.0, SHANGHAI).replace(
        hour=11, minute=5, second=0, microsecond=0
    )
    if t.timestamp() > now - 3600.0:
        t -= timedelta(days=1)
    return t.timestamp()


# -- shoppers walking in simulated time ------------------------------------------------------
class Stroller:
    """One shopper strolling at 1-2 m/s with heading changes, kept inside BOX."""

    __slots__ = ("lat", "lon", "heading", "speed", "acc")

    def __init__(self, lat: float, lon: float, heading: float, speed: float) -> None:
        self.lat, self.lon, self.heading, self.speed = lat, lon, heading, speed
        self.acc = 10.0

    @classmethod
    def place(cls, rng: random.Random) -> Stroller:
        """Start on East Nanjing Road (NANJING_SHARE of them) or anywhere in BOX."""
        if rng.random() < NANJING_SHARE:
            f = rng.random()
            lat = NANJING_EAST[0] + f * (NANJING_WEST[0] - NANJING_EAST[0])
            lon = NANJING_EAST[1] + f * (NANJING_WEST[1] - NANJING_EAST[1])
            lat += rng.uniform(-40.0, 40.0) / M_PER_DEG
        else:
            lat, lon = rng.uniform(BOX[0], BOX[2]), rng.uniform(BOX[1], BOX[3])
        return cls(lat, lon, rng.uniform(0.0, 2 * math.pi), rng.uniform(1.0, 2.0))

    def walk(self, dt: float, rng: random.Random) -> None:
        """Move on for dt seconds (turning into a side street now and then)."""
        self.speed = min(2.0, max(1.0, self.speed + rng.gauss(0.0, 0.1)))
        h = self.heading + rng.gauss(0.0, 0.3)
        r = rng.random()
        if r < 0.05:
            h += math.pi / 2 if r < 0.025 else -math.pi / 2
        d = self.speed * dt
        kx = M_PER_DEG * math.cos(math.radians(self.lat))
        lat = self.lat + d * math.cos(h) / M_PER_DEG
        lon = self.lon + d * math.sin(h) / kx
        if not BOX[0] <= lat <= BOX[2]:  # bounce off the edges of the area
            h = math.pi - h
            lat = min(BOX[2], max(BOX[0], lat))
        if not BOX[1] <= lon <= BOX[3]:
            h = -h
            lon = min(BOX[3], max(BOX[1], lon))
        self.lat, self.lon, self.heading = lat, lon, h

    def fix(self, t: float, rng: random.Random, noise: bool = True):
        """Return the fix the phone reports at t (GPS noise within the reported accuracy)."""
        from geo.engine import Fix

        self.acc = round(rng.triangular(5.0, 20.0, 8.0), 1) if noise else self.acc
        sigma = self.acc / 1.515 if noise else 2.0
        kx = M_PER_DEG * math.cos(math.radians(self.lat))
        return Fix(
            self.lat + rng.gauss(0.0, sigma) / M_PER_DEG,
            self.lon + rng.gauss(0.0, sigma) / kx,
            self.acc,
            round(t, 3),
            round(self.speed, 2),
        )


def fast_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Return the distance in metres (equirectangular; fine within a few km)."""
    x = (lon2 - lon1) * math.cos(math.radians((lat1 + lat2) / 2))
    return M_PER_DEG * math.hypot(lat2 - lat1, x)


def record_round(
    engine,
    clock,
    ids: list[str],
    walkers: list[Stroller],
    positions: list,
    rng: random.Random,
    dt: float,
    batch: int,
) -> Counter:
    """Walk every shopper on by dt and record their fix at the clock's new time (untimed)."""
    from core.errors import DomainError

    now = clock.advance(dt)
    verdicts: Counter = Counter()
    for start in range(0, len(ids), batch):
        batches = []
        for i in range(start, min(start + batch, len(ids))):
            w = walkers[i]
            w.walk(dt, rng)
            fix = w.fix(now, rng)
            positions[i] = fix
            batches.append((ids[i], [fix]))
        for outcome in engine.record_many(batches).values():
            if isinstance(outcome, DomainError):
                verdicts[f"error:{outcome.code}"] += 1
                continue
            for res in outcome:
                verdicts[f"ignored:{res.reason}" if res.ignored else res.verdict] += 1
    return verdicts


# -- CPU and Redis figures of the timed chunks -----------------------------------------------
class Meter:
    """Adds up CPU (this process, Valkey, the machine) and Redis commands over timed chunks.

    Only the chunks in which the measured calls run are counted, not the untimed walking and
    fix recording between them.
    """

    def __init__(self, r, redis_proc) -> None:
        self.r = r
        self.procs = {"redis": redis_proc}
        self.cpu: Counter = Counter()
        self.wall = 0.0
        self.commands: Counter = Counter()
        self.usec: Counter = Counter()
        self.valkey: Counter = Counter()  # INFO cpu: the server's own count of its CPU
        self._mark = None

    def start(self) -> None:
        self._mark = (
            _commandstats(self.r),
            _valkey_cpu(self.r),
            cpu_seconds(self.procs),
            time.process_time(),
            time.perf_counter(),
        )

    def stop(self) -> None:
        wall = time.perf_counter()
        me = time.process_time()
        cpu = cpu_seconds(self.procs)
        valkey = _valkey_cpu(self.r)
        stats = _commandstats(self.r)
        stats0, valkey0, cpu0, me0, wall0 = self._mark
        self.wall += wall - wall0
        for name, v in valkey.items():
            self.valkey[name] += v - valkey0.get(name, v)
        self.cpu["bench_process"] += me - me0
        for name, v in cpu.items():
            self.cpu[name] += v - cpu0.get(name, v)
        for name, (calls, usec) in stats.items():
            c0, u0 = stats0.get(name, (0, 0))
            if name != "info" and calls > c0:
                self.commands[name] += calls - c0
                self.usec[name] += usec - u0

    def figures(self, calls: int) -> dict:
        """Return CPU in % of a core, CPU per call and Redis commands per call."""
        wall = self.wall or 1e-9
        out = {name: round(100.0 * v / wall, 1) for name, v in self.cpu.items()}
        out["others"] = round(
            max(0.0, out.get("machine", 0.0) - sum(v for k, v in out.items() if k != "machine")),
            1,
        )
        n = max(1, calls)
        per_call = {
            "bench_process": round(self.cpu["bench_process"] / n * 1e6, 1),
            "redis": round(self.cpu["redis"] / n * 1e6, 1),
        }
        commands = {k: round(v / n, 2) for k, v in self.commands.most_common() if v / n >= 0.01}
        redis_us = {k: round(self.usec[k] / n, 1) for k, _ in self.usec.most_common(8)}
        return {
            "cpu": out,
            "cpu_us_per_call": per_call,
            "valkey_cpu": {
                # used_cpu_sys + used_cpu_user (all threads) and the main thread's alone, which
                # runs every command: near 100 % of a core, the server is saturated.
                "us_per_call": round(self.valkey["all"] / n * 1e6, 1),
                "utilisation_pct": round(100.0 * self.valkey["all"] / wall, 1),
                "main_thread_us_per_call": round(self.valkey["main"] / n * 1e6, 1),
                "main_thread_utilisation_pct": round(100.0 * self.valkey["main"] / wall, 1),
            },
            "redis_commands_per_call": commands,
            "redis_usec_per_call_by_command": redis_us,
        }


def _valkey_cpu(r) -> dict[str, float]:
    """Return the server's CPU seconds (INFO cpu): all threads, and its main thread."""
    info = r.info("cpu")
    out = {"all": float(info["used_cpu_sys"]) + float(info["used_cpu_user"])}
    if "used_cpu_sys_main_thread" in info:
        out["main"] = float(info["used_cpu_sys_main_thread"]) + float(
            info["used_cpu_user_main_thread"]
        )
    return out


def _commandstats(r) -> dict[str, tuple[int, int]]:
    return {
        name.removeprefix("cmdstat_"): (int(v.get("calls", 0)), int(v.get("usec", 0)))
        for name, v in r.info("commandstats").items()
    }


# -- profiling (py-spy from outside the process) ---------------------------------------------
class Profile:
    """py-spy record of this process for one phase (raw collapsed stacks)."""

    def __init__(self, out: Path | None) -> None:
        self.out = out
        self.proc = None
        self.pyinstrument = None
        if out is None:
            return
        out.parent.mkdir(parents=True, exist_ok=True)
        spy = find_py_spy()
        if spy is None:
            from pyinstrument import Profiler

            log("profile: py-spy not found, using pyinstrument (slows the loops ~2x)")
            self.pyinstrument = Profiler(interval=0.001)
            self.pyinstrument.start()
            return
        self.proc = subprocess.Popen(
            [
                spy,
                "record",
                "-p",
                str(os.getpid()),
                "-r",
                "250",
                "-d",
                "3600",
                "-f",
                "raw",
                "--nonblocking",
                "-o",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        time.sleep(0.5)  # attached before the loop starts

    def stop(self, root: tuple[str, str]) -> dict | None:
        """Stop and summarize the samples under the `root` frame (function, file suffix)."""
        if self.pyinstrument is not None:
            self.pyinstrument.stop()
            text = self.pyinstrument.output_text(unicode=False, color=False)
            self.out.with_suffix(".pyinstrument.txt").write_text(text)
            log(f"profile: pyinstrument text in {self.out.with_suffix('.pyinstrument.txt')}")
            return None
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            stop_process(self.proc)
            err = b"timeout"
        if not self.out.exists():
            log(f"profile: py-spy failed: {err.decode(errors='replace')[-500:]}")
            return None
        summary = summarize_under(self.out, *root)
        log(f"profile in {self.out}, samples under {root[0]} ({root[1]}):\n" + summary.pop("text"))
        return summary


def summarize_under(path: Path, func: str, file_suffix: str, top: int = 20) -> dict:
    """Summarize py-spy raw stacks below one frame: self and inclusive shares, in %."""
    frame_re = re.compile(r"^(.*) \((.*?)(?::\d+)?\)$")
    self_t: Counter = Counter()
    total_t: Counter = Counter()
    samples = under = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        samples += n
        frames = []
        for f in stack.split(";"):
            m = frame_re.match(f)
            name, file = (m.group(1), m.group(2)) if m else (f, "")
            for prefix in (str(ROOT) + "/", str(Path(sys.prefix)) + "/"):
                file = file.removeprefix(prefix)
            frames.append((name, file))
        # py-spy names methods Class.method; match either form.
        idx = next(
            (
                k
                for k, (name, file) in enumerate(frames)
                if (name == func or name.rpartition(".")[2] == func) and file.endswith(file_suffix)
            ),
            None,
        )
        if idx is None:
            continue
        under += n
        sub = [f"{name} ({file})" for name, file in frames[idx:]]
        self_t[sub[-1]] += n
        for f in set(sub):
            total_t[f] += n
    if not under:
        return {"samples": 0, "text": "(no samples)"}
    selfs = [(round(100.0 * n / under, 1), f) for f, n in self_t.most_common(top)]
    totals = [(round(100.0 * n / under, 1), f) for f, n in total_t.most_common(top + 10)]
    text = [f"{under} samples of {samples} in the process; by self time:"]
    text += [f"  {p:5.1f}%  {f}" for p, f in selfs]
    text += ["by total (inclusive) time:"] + [f"  {p:5.1f}%  {f}" for p, f in totals]
    return {
        "samples": under,
        "share_of_process": round(under / samples, 3),
        "self_pct": selfs[:12],
        "total_pct": totals[:20],
        "text": "\n".join(text),
    }


# -- setup: stores, campaign, game -----------------------------------------------------------
def make_campaign(promos, game, t0: float) -> tuple[str, str]:
    """A live campaign on the Shanghai stores, with a game and a coupon for store catches."""
    from game.models import GameConfigIn
    from promotions.models import MAX_FEN, CampaignIn, OfferIn

    campaign = promos.campaigns.create(
        CampaignIn(
            name="Bench: Shanghai catch festival",
            starts_at=t0 - 3600.0,
            ends_at=time.time() + 30 * 86_400,
            timezone="Asia/Shanghai",
            targets={"cities": ["Shanghai"]},
            budget={"count": CAP_HIGH, "value_fen": MAX_FEN},
        ),
        actor="bench",
    )
    cid = campaign["id"]
    offer = promos.campaigns.create_offer(
        cid,
        OfferIn(
            name="10 off for a store catch",
            kind="amount_off",
            amount_off_fen=1000,
            channels=["game"],
            caps={
                "total": CAP_HIGH,
                "value_fen": MAX_FEN,
                "per_shopper": 1_000_000,
                "per_shopper_day": 1_000_000,
                "per_store_day": CAP_HIGH,
            },
        ),
        actor="bench",
    )
    promos.campaigns.transition(cid, "scheduled", actor="bench")  # live: its start has passed
    status = promos.campaigns.get(cid)["status"]
    if status != "live":
        raise RuntimeError(f"campaign {cid} is {status}, not live")
    game.configure(
        cid,
        GameConfigIn(
            species=SPECIES,
            density_per_cell=1.0,
            store_density=2.0,
            offer_id=offer["id"],
            seed="footfall-game-bench",
        ),
    )
    return cid, offer["id"]


def write_consent(r, ids: list[str], now: float) -> None:
    """Consent, written the way LocationEngine.set_consent writes it, but pipelined."""
    from geo import keys
    from geo.engine import TRUST_START

    for start in range(0, len(ids), 1000):
        pipe = r.pipeline(transaction=False)
        for sid in ids[start : start + 1000]:
            st = keys.shopper_state(sid)
            pipe.hset(st, mapping={"consent": "1", "consent_at": f"{now:.3f}"})
            pipe.hsetnx(st, "trust", TRUST_START)
            pipe.hincrby(st, "ver", 1)
        pipe.execute()


# -- (a) spawn queries in process ------------------------------------------------------------
def _targets(spawns: list[dict]) -> tuple:
    """Keep what a phone needs to aim: (id, lat, lon, expires_at) per spawn.

    Tuples of plain values only, which the garbage collector stops tracking: the benchmark's
    own ~1M remembered spawns must not lengthen the collections that land in timed calls.
    """
    return tuple([(s["id"], s["lat"], s["lon"], s["expires_at"]) for s in spawns])


class GcWatch:
    """Count the garbage collections (and their pauses) during a timed phase."""

    def __init__(self) -> None:
        import gc

        self.gc = gc
        self.t = 0.0
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        gc.callbacks.append(self._cb)

    def _cb(self, phase: str, info: dict) -> None:
        if phase == "start":
            self.t = time.perf_counter()
        else:
            self.pauses[info["generation"]].append((time.perf_counter() - self.t) * 1000.0)

    def stop(self) -> dict:
        self.gc.callbacks.remove(self._cb)
        return {
            f"gen{g}": {
                "n": len(v),
                "total_ms": round(sum(v), 1),
                "max_ms": round(max(v), 1) if v else 0.0,
            }
            for g, v in self.pauses.items()
        }


def first_look(ctx: dict) -> dict:
    """Every shopper's first spawn query on a fresh Game (untimed warm-up, reported apart).

    This pays what a process pays once per shopper and slot, not on every poll: the spawn
    tables and store caches are filled, and every rare spawn in view is announced (an SADD per
    spawn).
    """
    game, seen, ids, now = ctx["game"], ctx["seen"], ctx["ids"], ctx["clock"].now()
    meter = Meter(ctx["r"], ctx["redis_proc"])
    lat: list[float] = []
    perf = time.perf_counter
    meter.start()
    for i, sid in enumerate(ids):
        t = perf()
        view = game.visible(sid)
        lat.append((perf() - t) * 1000.0)
        seen[i] = (now, _targets(view["spawns"]))
    meter.stop()
    total = sum(lat) / 1000.0
    lat.sort()
    fig = meter.figures(len(lat))
    res = {
        "queries": len(lat),
        "per_s": round(len(lat) / total, 1) if total else 0.0,
        "p50_ms": pct(lat, 0.5),
        "p99_ms": pct(lat, 0.99),
        "cpu_us_per_call": fig["cpu_us_per_call"],
        "redis_commands_per_call": fig["redis_commands_per_call"],
    }
    log(
        f"first look (untimed warm-up): {len(lat)} spawn queries, {res['per_s']:,.0f}/s, p50 "
        f"{res['p50_ms']} ms, p99 {res['p99_ms']} ms; Redis commands/query "
        f"{res['redis_commands_per_call']}"
    )
    return res


def run_spawn_queries(ctx: dict, args) -> dict:
    """Call Game.visible for shopper after shopper until `duration` s were spent inside it."""
    from game import GameRefused

    game, clock, rng = ctx["game"], ctx["clock"], ctx["rng"]
    ids, walkers, positions, seen = ctx["ids"], ctx["walkers"], ctx["positions"], ctx["seen"]
    meter = Meter(ctx["r"], ctx["redis_proc"])
    order = list(range(len(ids)))
    rng.shuffle(order)
    lat: list[float] = []
    refusals: Counter = Counter()
    rarities: Counter = Counter()
    kinds: Counter = Counter()
    spawns = 0
    in_call = 0.0
    rounds = 0
    verdicts: Counter = Counter()
    perf = time.perf_counter
    profile = Profile(args.profile / "visible.txt" if args.profile else None)
    gcw = GcWatch()
    loop0 = perf()
    while in_call < args.duration:
        verdicts.update(
            record_round(
                ctx["engine"], clock, ids, walkers, positions, rng, args.query_step, args.batch
            )
        )
        rounds += 1
        now = clock.now()
        meter.start()
        for i in order:
            t = perf()
            try:
                view = game.visible(ids[i])
            except GameRefused as exc:
                view = None
                refusals[exc.code] += 1
            dt = perf() - t
            in_call += dt
            lat.append(dt * 1000.0)
            if view is not None:
                found = view["spawns"]
                spawns += len(found)
                seen[i] = (now, _targets(found))
                for s in found:
                    rarities[s["rarity"]] += 1
                    kinds["store" if s["store_id"] else "wild"] += 1
            if in_call >= args.duration:
                break
        meter.stop()
    loop_wall = perf() - loop0
    gc_pauses = gcw.stop()
    prof = profile.stop(("Game.visible", "game/engine.py"))
    calls = len(lat)
    lat.sort()
    res = {
        "per_s": calls / in_call if in_call else 0.0,
        "calls": calls,
        "in_call_s": round(in_call, 3),
        "loop_wall_s": round(loop_wall, 2),
        "rounds": rounds,
        "p50_ms": pct(lat, 0.50),
        "p90_ms": pct(lat, 0.90),
        "p99_ms": pct(lat, 0.99),
        "max_ms": pct(lat, 1.0),
        "refusals": dict(refusals),
        "spawns_per_query": round(spawns / max(1, calls - sum(refusals.values())), 1),
        "spawns_seen_by_kind": dict(kinds),
        "spawns_seen_by_rarity": dict(rarities),
        "fix_verdicts": dict(verdicts),
        "gc_during_loop": gc_pauses,
        **meter.figures(calls),
    }
    if prof is not None:
        res["profile"] = prof
    log(
        f"visible: {calls} queries in {in_call:.2f}s inside Game.visible = {res['per_s']:,.0f}/s "
        f"(loop {loop_wall:.1f}s incl. walking and fixes, {rounds} rounds); p50 "
        f"{res['p50_ms']} ms p99 {res['p99_ms']} ms; {res['spawns_per_query']} spawns per "
        f"query {dict(kinds)}; refusals {dict(refusals)}; CPU % of a core {res['cpu']}; "
        f"CPU us/query {res['cpu_us_per_call']}; Redis commands/query "
        f"{res['redis_commands_per_call']}"
    )
    return res


# -- (a') and (b') the same with concurrent callers in the one process ----------------------
def run_concurrent(ctx: dict, args) -> dict:
    """Spawn queries, then catches, from `--threads` threads of this one process.

    A server process overlaps requests (gevent greenlets); with threads, one caller's wait for
    Redis is another's Python time. Rates are calls per second of wall time of the timed part.
    """
    from concurrent.futures import ThreadPoolExecutor

    from game import GameRefused
    from geo.engine import Fix

    game, clock, rng = ctx["game"], ctx["clock"], ctx["rng"]
    ids, walkers, positions, seen = ctx["ids"], ctx["walkers"], ctx["positions"], ctx["seen"]
    n = args.threads
    perf = time.perf_counter
    order = list(range(len(ids)))
    rng.shuffle(order)
    parts = [order[k::n] for k in range(n)]

    def queries(part: list[int], stop: float) -> tuple[int, list[float]]:
        lat = []
        while perf() < stop:
            for i in part:
                t = perf()
                try:
                    game.visible(ids[i])
                except GameRefused:
                    pass
                lat.append((perf() - t) * 1000.0)
                if perf() >= stop:
                    break
        return len(lat), lat

    record_round(ctx["engine"], clock, ids, walkers, positions, rng, args.query_step, args.batch)
    with ThreadPoolExecutor(n) as pool:
        t0 = perf()
        stop = t0 + args.duration
        done = list(pool.map(queries, parts, [stop] * n))
        wall = perf() - t0
    q_lat = sorted(x for _, lat in done for x in lat)
    spawn = {
        "per_s": sum(c for c, _ in done) / wall,
        "p50_ms": pct(q_lat, 0.5),
        "p99_ms": pct(q_lat, 0.99),
    }

    thrown: list[set] = [set() for _ in ids]

    def throws(part: list[int], now: float) -> tuple[Counter, list[float]]:
        outcomes, lat = Counter(), []
        for i in part:
            fix = positions[i]
            targets = [
                sid
                for sid, y, x, expires in seen[i][1]
                if sid not in thrown[i]
                and expires > now + 5.0
                and fast_m(fix.lat, fix.lon, y, x) <= REACH_M
            ]
            if not targets:
                continue
            sid = targets[0]
            throw = Fix(fix.lat, fix.lon, fix.accuracy_m, now, fix.speed_mps)
            t = perf()
            try:
                outcome = game.catch(ids[i], sid, throw)["outcome"]
            except GameRefused as exc:
                outcome = exc.code
            lat.append((perf() - t) * 1000.0)
            outcomes[outcome] += 1
            if outcome != "missed":
                thrown[i].add(sid)
        return outcomes, lat

    in_timed = 0.0
    c_out: Counter = Counter()
    c_lat: list[float] = []
    with ThreadPoolExecutor(n) as pool:
        while in_timed < args.duration:
            record_round(
                ctx["engine"], clock, ids, walkers, positions, rng, args.catch_step, args.batch
            )
            now = clock.now()
            for i in order:  # the phones' lists of spawns (untimed, as in the catch part)
                if seen[i] is None or now - seen[i][0] > REFRESH_S:
                    try:
                        seen[i] = (now, _targets(game.visible(ids[i])["spawns"]))
                    except GameRefused:
                        seen[i] = (now, ())
            t0 = perf()
            for outcomes, lat in pool.map(throws, parts, [now] * n):
                c_out.update(outcomes)
                c_lat += lat
            in_timed += perf() - t0
    c_lat.sort()
    catch = {
        "per_s": len(c_lat) / in_timed if in_timed else 0.0,
        "p50_ms": pct(c_lat, 0.5),
        "p99_ms": pct(c_lat, 0.99),
        "outcomes": dict(c_out),
    }
    log(
        f"{n} threads: {spawn['per_s']:,.0f} spawn queries/s (p99 {spawn['p99_ms']} ms), "
        f"{catch['per_s']:,.0f} catches/s (p99 {catch['p99_ms']} ms) {dict(c_out)}"
    )
    return {"threads": n, "spawns": spawn, "catches": catch}


# -- (b) catches in process ------------------------------------------------------------------
class Throws:
    """What a catch loop's throws gave: outcomes, refusals, coupons, points, latencies. Shared
    by the one-caller part and each caller process of `--catch-processes`."""

    def __init__(self) -> None:
        self.lat: list[float] = []
        self.outcomes: Counter = Counter()
        self.by_kind: Counter = Counter()
        self.refusals: Counter = Counter()
        self.errors: Counter = Counter()
        self.coupons = self.points = self.no_target = 0
        self.in_call = 0.0

    def add(self, other: dict) -> None:
        """Add a caller process's tally (its `as_dict`)."""
        self.lat.extend(other["lat"])
        for name in ("outcomes", "by_kind", "refusals", "errors"):
            getattr(self, name).update(other[name])
        self.coupons += other["coupons"]
        self.points += other["points"]
        self.no_target += other["no_target"]
        self.in_call += other["in_call_s"]

    def as_dict(self) -> dict:
        return {
            "calls": len(self.lat),
            "in_call_s": self.in_call,
            "lat": sorted(self.lat),
            **{n: dict(getattr(self, n)) for n in ("outcomes", "by_kind", "refusals", "errors")},
            "coupons": self.coupons,
            "points": self.points,
            "no_target": self.no_target,
        }

    def figures(self, seconds: float) -> dict:
        """The part's figures, rates per `seconds` (time inside the calls, or the wall time of
        the windows when callers overlap)."""
        lat = sorted(self.lat)
        calls, caught = len(lat), self.outcomes.get("caught", 0)
        return {
            "per_s": calls / seconds if seconds else 0.0,
            "calls": calls,
            "caught_per_s": round(caught / seconds, 1) if seconds else 0.0,
            "in_call_s": round(seconds, 3),
            "p50_ms": pct(lat, 0.50),
            "p90_ms": pct(lat, 0.90),
            "p99_ms": pct(lat, 0.99),
            "max_ms": pct(lat, 1.0),
            **{n: dict(getattr(self, n)) for n in ("outcomes", "by_kind", "refusals", "errors")},
            "refusal_share": round(sum(self.refusals.values()) / max(1, calls), 4),
            "coupons_issued": self.coupons,
            "points": self.points,
            "caught_share": round(caught / max(1, sum(self.outcomes.values())), 3),
            "shoppers_without_target": self.no_target,
        }

    def pick(self, rng, fix, seen, done: set, now: float):
        """Return (spawn id, throw fix) aimed at a spawn in reach, or None (counted)."""
        from geo.engine import Fix

        targets = [
            sid
            for sid, y, x, expires in seen
            if sid not in done and expires > now + 5.0 and fast_m(fix.lat, fix.lon, y, x) <= REACH_M
        ]
        if not targets:
            self.no_target += 1
            return None
        sid = rng.choice(targets)
        throw = Fix(
            fix.lat + rng.gauss(0.0, 2.0) / M_PER_DEG,
            fix.lon + rng.gauss(0.0, 2.0) / (M_PER_DEG * 0.855),
            fix.accuracy_m,
            now,
            fix.speed_mps,
        )
        return sid, throw

    def throw(self, game, shopper: str, sid: str, fix, done: set) -> None:
        """Throw once through `Game.catch`, timed; tally what it gave."""
        from core.errors import DomainError
        from game import GameRefused

        code = result = None
        t = time.perf_counter()
        try:
            result = game.catch(shopper, sid, fix)
        except GameRefused as exc:
            code = exc.code
        except DomainError as exc:
            self.errors[exc.code] += 1
        dt = time.perf_counter() - t
        self.in_call += dt
        self.lat.append(dt * 1000.0)
        if result is not None:
            outcome = result["outcome"]
            self.outcomes[outcome] += 1
            self.by_kind[f"{'store' if sid.startswith('s:') else 'wild'}:{outcome}"] += 1
            if outcome in ("caught", "fled"):
                done.add(sid)
            if result.get("coupon"):
                self.coupons += 1
            self.points += result.get("points") or 0
        elif code is not None:
            self.refusals[code] += 1
            if code in _NEXT_SPAWN:
                done.add(sid)


def run_catches(ctx: dict, args) -> dict:
    """Throw at spawns within reach, shopper after shopper, until `duration` s inside catch."""
    from game import GameRefused

    game, clock, rng = ctx["game"], ctx["clock"], ctx["rng"]
    ids, walkers, positions, seen = ctx["ids"], ctx["walkers"], ctx["positions"], ctx["seen"]
    meter = Meter(ctx["r"], ctx["redis_proc"])
    order = list(range(len(ids)))
    rng.shuffle(order)
    # Spawns each shopper caught or saw flee (kept for the caller processes of (b'')).
    done: list[set] = ctx.setdefault("done", [set() for _ in ids])
    tally = Throws()
    verdicts: Counter = Counter()
    refreshed = rounds = 0
    perf = time.perf_counter
    profile = Profile(args.profile / "catch.txt" if args.profile else None)
    gcw = GcWatch()
    loop0 = perf()
    while tally.in_call < args.duration:
        # More than the 10 s cooldown per round: a shopper throws at most once per round.
        verdicts.update(
            record_round(
                ctx["engine"], clock, ids, walkers, positions, rng, args.catch_step, args.batch
            )
        )
        rounds += 1
        now = clock.now()
        # What each phone knows: the spawns around it, asked again every REFRESH_S (untimed).
        for i in order:
            if seen[i] is None or now - seen[i][0] > REFRESH_S:
                try:
                    view = game.visible(ids[i])
                    seen[i] = (now, _targets(view["spawns"]))
                except GameRefused:
                    seen[i] = (now, ())
                refreshed += 1
        meter.start()
        for i in order:
            aimed = tally.pick(rng, positions[i], seen[i][1], done[i], now)
            if aimed is not None:
                tally.throw(game, ids[i], *aimed, done[i])
            if tally.in_call >= args.duration:
                break
        meter.stop()
    loop_wall = perf() - loop0
    gc_pauses = gcw.stop()
    prof = profile.stop(("Game.catch", "game/engine.py"))
    res = tally.figures(tally.in_call)
    calls = res["calls"]
    res.update(
        {
            "loop_wall_s": round(loop_wall, 2),
            "rounds": rounds,
            "spawn_lists_refreshed": refreshed,
            "fix_verdicts": dict(verdicts),
            "gc_during_loop": gc_pauses,
            **meter.figures(calls),
        }
    )
    if prof is not None:
        res["profile"] = prof
    log(
        f"catch: {calls} throws in {tally.in_call:.2f}s inside Game.catch = "
        f"{res['per_s']:,.0f}/s (loop {loop_wall:.1f}s, {rounds} rounds); p50 {res['p50_ms']} ms "
        f"p99 {res['p99_ms']} ms; outcomes {res['outcomes']} {res['by_kind']}; coupons "
        f"{tally.coupons}; refusals {res['refusals']}; errors {res['errors']}; no target "
        f"{tally.no_target}; CPU % of a core {res['cpu']}; CPU us/throw {res['cpu_us_per_call']}; "
        f"Redis commands/throw "
        f"{res['redis_commands_per_call']}"
    )
    return res


# -- (b'') catches from several caller processes at once ------------------------------------
def _catch_caller(k: int, spec: dict, shared: dict) -> None:
    """One caller process of `--catch-processes`: its own Redis client, Game and clock, its own
    shoppers; round by round it walks them and lists their spawns (untimed), then throws with
    the others between two barriers (timed by the parent)."""
    import threading

    from app.extensions import make_redis
    from core.clock import FrozenClock
    from game import Game, GameRefused, GameSettings
    from geo.engine import EngineSettings, LocationEngine
    from geo.stores import StoreCatalog
    from promotions import CouponCodec, Promotions

    barrier, go, round_over, out = (
        shared["barrier"],
        shared["go"],
        shared["round_over"],
        shared["out"],
    )
    try:
        r = make_redis(spec["url"])  # not the parent's client: one of its own
        clock = FrozenClock(spec["now"])
        catalog = StoreCatalog(r, clock)
        promos = Promotions(r, clock, catalog, CouponCodec(COUPON_KEYS))
        engine = LocationEngine(r, catalog, clock, EngineSettings())
        game = Game(r, clock, promos, engine, GameSettings(cooldown_s=spec["cooldown"]))
        rng = random.Random(spec["seed"])
        ids, walkers, positions = spec["ids"], spec["walkers"], spec["positions"]
        seen, done = spec["seen"], spec["done"]
        step, batch = spec["catch_step"], spec["batch"]
        order = list(range(len(ids)))
        tally = Throws()
        rounds = 0
        cpu = 0.0
        fresh = True  # a new Game: list every shopper's spawns once (fills its caches)
        while True:
            record_round(engine, clock, ids, walkers, positions, rng, step, batch)
            now = clock.now()
            throws = []
            rng.shuffle(order)  # a round may end before the last shoppers threw
            for i in order:
                if fresh or seen[i] is None or now - seen[i][0] > REFRESH_S:
                    try:
                        seen[i] = (now, _targets(game.visible(ids[i])["spawns"]))
                    except GameRefused:
                        seen[i] = (now, ())
                aimed = tally.pick(rng, positions[i], seen[i][1], done[i], now)
                if aimed is not None:
                    throws.append((i, *aimed))
            fresh = False
            barrier.wait()  # every caller is ready; the parent marks the start between
            barrier.wait()  # the two waits
            if not go.value:
                break
            rounds += 1
            cpu0 = time.process_time()
            for i, sid, throw in throws:
                if round_over.is_set():  # another caller ran out of throws: end together
                    break
                tally.throw(game, ids[i], sid, throw, done[i])
            round_over.set()
            cpu += time.process_time() - cpu0
            barrier.wait()  # every caller stopped; the parent marks the end
        r.close()
        out.put({"k": k, "shoppers": len(ids), "cpu_s": cpu, "rounds": rounds, **tally.as_dict()})
    except threading.BrokenBarrierError:
        out.put({"k": k, "error": "barrier broken (another caller failed)"})
    except BaseException as exc:  # tell the parent, and free the others from the barrier
        import traceback

        barrier.abort()
        out.put({"k": k, "error": f"{exc!r}\n{traceback.format_exc()[-3000:]}"})


def _ledger_totals(r, cid: str) -> tuple[int, float]:
    """Return (coupons in the campaign's book, points on its overall board): the ledger side of
    what the callers were told."""
    from game import keys as game_keys
    from promotions import keys as promo_keys

    board = r.zrange(game_keys.board(cid, "campaign", "all"), 0, -1, withscores=True)
    return r.hlen(promo_keys.coupons(cid)), sum(score for _, score in board)


def run_catch_processes(ctx: dict, args) -> dict:
    """Throws from `--catch-processes` caller processes at once, each on its own shoppers.

    Each caller is a forked process with its own Redis client, Game and FrozenClock (all at
    the same simulated time) and a disjoint share of the shoppers, throwing as in (b). Round
    by round every caller walks its shoppers and picks their targets (untimed), then all
    throw together between two barriers; the round ends for all when the first caller has
    thrown at every shopper of its share. The figure = throws of all callers / wall time of
    those windows. Valkey's CPU comes from INFO cpu over the same windows.
    """
    import multiprocessing as mp

    n = args.catch_processes
    fork = mp.get_context("fork")  # the callers start from this process's walkers and lists
    barrier = fork.Barrier(n + 1, timeout=600)
    shared = {
        "barrier": barrier,
        "go": fork.Value("b", 1, lock=False),
        "round_over": fork.Event(),
        "out": fork.Queue(),
    }
    ids, walkers, positions, seen = ctx["ids"], ctx["walkers"], ctx["positions"], ctx["seen"]
    order = list(range(len(ids)))
    ctx["rng"].shuffle(order)
    now = ctx["clock"].now()
    coupons0, points0 = _ledger_totals(ctx["r"], ctx["cid"])
    procs = []
    for k in range(n):
        part = order[k::n]
        spec = {
            "url": ctx["url"],
            "now": now,
            "cooldown": args.cooldown,
            "seed": args.seed * 1000 + k,
            "catch_step": args.catch_step,
            "batch": args.batch,
            "ids": [ids[i] for i in part],
            "walkers": [walkers[i] for i in part],
            "positions": [positions[i] for i in part],
            "seen": [seen[i] for i in part],
            "done": [ctx["done"][i] for i in part],
        }
        proc = fork.Process(target=_catch_caller, args=(k, spec, shared), daemon=True)
        proc.start()
        procs.append(proc)
    meter = Meter(ctx["r"], ctx["redis_proc"])
    children = {f"caller{k}": psutil_process(p.pid) for k, p in enumerate(procs)}
    meter.procs.update(children)
    windows = 0
    try:
        while True:
            barrier.wait()  # the callers have their round's throws ready
            go = meter.wall < args.duration
            shared["go"].value = 1 if go else 0
            if go:
                meter.start()
            barrier.wait()  # ... and throw from now on
            if not go:
                break
            barrier.wait()  # the callers all stopped throwing
            meter.stop()
            shared["round_over"].clear()
            windows += 1
        results = [shared["out"].get(timeout=600) for _ in procs]
    finally:
        for proc in procs:
            proc.join(timeout=60)
            if proc.is_alive():
                proc.kill()
    failed = [res["error"] for res in results if "error" in res]
    if failed:
        raise RuntimeError("a caller process failed:\n" + "\n".join(failed))
    results.sort(key=lambda res: res["k"])
    # Where the callers' clocks are: they walked once more before the last barrier.
    ctx["clock"].advance(args.catch_step * (results[0]["rounds"] + 1))
    coupons1, points1 = _ledger_totals(ctx["r"], ctx["cid"])
    wall = meter.wall
    tally = Throws()
    for res in results:
        tally.add(res)
    calls = len(tally.lat)
    fig = meter.figures(calls)
    per_process = [
        {
            "shoppers": res["shoppers"],
            "calls": res["calls"],
            "per_s": round(res["calls"] / wall, 1) if wall else 0.0,
            "in_call_per_s": round(res["calls"] / res["in_call_s"], 1) if res["in_call_s"] else 0.0,
            "in_call_s": round(res["in_call_s"], 3),
            "cpu_us_per_call": round(res["cpu_s"] / max(1, res["calls"]) * 1e6, 1),
            "cpu_pct": round(100.0 * res["cpu_s"] / wall, 1) if wall else 0.0,
            "p50_ms": pct(res["lat"], 0.5),
            "p99_ms": pct(res["lat"], 0.99),
        }
        for res in results
    ]
    # The rates are per the wall time of the windows, all callers inside.
    res = tally.figures(wall)
    coupons, points = tally.coupons, tally.points
    res.update(
        {
            "loop_wall_s": round(wall, 2),
            "rounds": windows,
            "spawn_lists_refreshed": None,
            "fix_verdicts": None,
            "gc_during_loop": None,
            "processes": n,
            "per_process": per_process,
            # What the callers were told against the books: one coupon per store catch, and
            # every point on the campaign's board, with all callers at once.
            "ledger": {
                "coupons_in_book": coupons1 - coupons0,
                "coupons_told": coupons,
                "points_on_board": points1 - points0,
                "points_told": points,
                "agree": coupons1 - coupons0 == coupons and points1 - points0 == points,
            },
            **fig,
        }
    )
    callers_cpu = sum(v for k, v in fig["cpu"].items() if k.startswith("caller"))
    log(
        f"catch, {n} caller processes: {calls} throws in {wall:.2f}s of wall = "
        f"{res['per_s']:,.0f}/s ({windows} windows); per process "
        f"{[p['per_s'] for p in per_process]}/s, in-call "
        f"{[p['in_call_per_s'] for p in per_process]}/s, "
        f"CPU us/throw {[p['cpu_us_per_call'] for p in per_process]}; p50 {res['p50_ms']} ms "
        f"p99 {res['p99_ms']} ms; outcomes {res['outcomes']}; refusals {res['refusals']}; "
        f"errors {res['errors']}; Valkey {fig['valkey_cpu']}; CPU % of a core {fig['cpu']} "
        f"(callers together {callers_cpu:.0f} %); ledger {res['ledger']}"
    )
    if not res["ledger"]["agree"]:
        log("WARNING: the books do not agree with what the callers were told")
    return res


def psutil_process(pid: int):
    """Return a psutil handle on a process (for its CPU times)."""
    import psutil

    return psutil.Process(pid)


# -- (c) HTTP --------------------------------------------------------------------------------
def http_setup(url: str, tmp: Path, args, rng: random.Random) -> list[list]:
    """Shopper accounts with sessions, consent, a real-time position and spawns within reach.

    Returns [token, lat, lon, accuracy, speed, [spawn ids nearest first]] per shopper.
    """
    from app import create_app
    from config import TestConfig
    from tests.servers import SECRET_KEY

    # The passwords are never checked here: hash them as cheaply as argon2 allows.
    app = create_app(
        TestConfig(
            REDIS_URL=url,
            SECRET_KEY=SECRET_KEY,
            VAR_DIR=tmp / "var",
            PASSWORD_HASH_TIME_COST=1,
            PASSWORD_HASH_MEMORY_KIB=64,
        )
    )
    accounts, engine, game = (
        app.extensions["accounts"],
        app.extensions["geo"],
        app.extensions["game"],
    )

    def account(i: int) -> tuple[str, str]:
        user = accounts.create_user(f"game-bench-{i}@example.test", PASSWORD, "shopper")
        engine.set_consent(user["id"], True)
        return user["id"], accounts.open_session(user)["token"]

    t = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        made = list(pool.map(account, range(args.http_shoppers)))
    log(
        f"http: {len(made)} shopper accounts with sessions and consent in "
        f"{time.perf_counter() - t:.1f}s"
    )
    walkers = [Stroller.place(rng) for _ in made]
    fixes = [w.fix(time.time(), rng) for w in walkers]
    for start in range(0, len(made), args.batch):
        engine.record_many(
            [(made[i][0], [fixes[i]]) for i in range(start, min(start + args.batch, len(made)))]
        )
    # Spawns that outlive both HTTP runs (a throw at one that expired meanwhile is answered
    # SPAWN_EXPIRED and the shopper moves on to the next).
    horizon = time.time() + 2 * (args.http_duration + args.http_warmup + 2.0) + 20.0
    shoppers = []
    reach = Counter()
    for (uid, token), fix, w in zip(made, fixes, walkers, strict=True):
        # What the phone shows (nearest first). This also announces the rare spawns in view,
        # so the server's spawn queries are a shopper's next looks, not first looks (a first
        # look publishes one socket event per rare spawn in view).
        found = game.visible(uid)["spawns"]
        near = [s["id"] for s in found if s["distance_m"] <= REACH_M and s["expires_at"] > horizon]
        reach["with_target" if near else "without_target"] += 1
        shoppers.append([token, fix.lat, fix.lon, fix.accuracy_m, w.speed, near])
    log(f"http: positions recorded at real time; spawns within {REACH_M:g} m: {dict(reach)}")
    app.extensions["redis"].close()
    return shoppers


def run_load(
    mode: str, port: int, tmp: Path, args, shoppers: list, procs: dict, profile_dir: Path | None
) -> dict:
    """Run the load generator against one endpoint; return rate, latency, CPU."""
    import psutil

    start_at = time.time() + 1.5  # the generator has connected by then
    spec = {
        "mode": mode,
        "port": port,
        "connections": args.connections,
        "start_at": start_at,
        "warmup": args.http_warmup,
        "duration": args.http_duration,
        "seed": args.seed,
        "cooldown_s": args.cooldown,
        "shoppers": shoppers,
    }
    path = tmp / f"load-{mode}.json"
    path.write_text(json.dumps(spec))
    gen = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--_loadgen", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    spy = None
    try:
        watched = dict(procs) | {"loadgen": psutil.Process(gen.pid)}
        time.sleep(max(0.0, start_at + args.http_warmup - time.time()))
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
                    str(max(1, int(args.http_duration))),
                    "-f",
                    "raw",
                    "--nonblocking",
                    "-o",
                    str(profile_dir / f"http_{mode}.txt"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        cpu0 = cpu_seconds(watched)
        w0 = time.perf_counter()
        time.sleep(max(0.0, start_at + args.http_warmup + args.http_duration - time.time()))
        cpu = cpu_percent(cpu0, cpu_seconds(watched), time.perf_counter() - w0)
        stdout, stderr = gen.communicate(timeout=args.http_duration + args.http_warmup + 60.0)
        if gen.returncode != 0 or not stdout.strip():
            raise RuntimeError(
                f"load generator failed ({gen.returncode}): "
                f"{stderr.decode(errors='replace')[-2000:]}"
            )
        out = json.loads(stdout.decode().strip().splitlines()[-1])
        if spy is not None:
            spy.communicate(timeout=args.http_duration + 30.0)
            prof = profile_dir / f"http_{mode}.txt"
            if prof.exists():
                root = (
                    ("spawns", "blueprints/game.py")
                    if mode == "spawns"
                    else ("catch", "blueprints/game.py")
                )
                summary = summarize_under(prof, *root)
                log(
                    f"http {mode}: py-spy of the gunicorn worker in {prof}, under the view:\n"
                    + summary["text"]
                )
    finally:
        stop_process(gen, timeout=5.0)
        if spy is not None:
            stop_process(spy, timeout=5.0)
    lat = sorted(out.pop("lat_ms"))
    statuses = Counter(out["statuses"])
    if mode == "spawns":
        answered = statuses.get("200", 0)
    else:  # a throw is answered with an outcome (200) or a refusal with its code (4xx)
        answered = sum(n for s, n in statuses.items() if s[:1] in "24")
    per_s = answered / args.http_duration
    server_ms = round(cpu.get("server", 0.0) * 10.0 / per_s, 3) if per_s else None
    return {
        "per_s": per_s,
        "answered": answered,
        "p50_ms": pct(lat, 0.50),
        "p90_ms": pct(lat, 0.90),
        "p99_ms": pct(lat, 0.99),
        "max_ms": pct(lat, 1.0),
        "server_cpu_ms_per_request": server_ms,
        "cpu": cpu,
        **out,
    }


def run_http(r, server, redis_proc, tmp: Path, args, rng: random.Random) -> dict:
    """GET /api/game/spawns and POST /api/game/catches through one gunicorn gevent worker."""
    import http.client

    import psutil

    from app.redis_supervisor import free_port
    from geo import keys as geo_keys
    from promotions import keys as promo_keys
    from tests.servers import start_gunicorn

    # The domain part's geofence events and exit deadlines are in simulated time: the server's
    # consumer and sweeper start from now, as an up-to-date production server would.
    for stream in geo_keys.event_streams():
        try:
            r.xgroup_create(stream, promo_keys.CONSUMER_GROUP, id="$", mkstream=True)
        except Exception as exc:  # noqa: BLE001 - the group may exist: move it to the end
            if "BUSYGROUP" not in str(exc):
                raise
            r.xgroup_setid(stream, promo_keys.CONSUMER_GROUP, id="$")
    for k in range(geo_keys.EVENT_PARTITIONS):
        r.delete(geo_keys.pending_exits(k))
    with ThreadPoolExecutor(1) as bg:  # boot the server while the accounts are made
        booting = bg.submit(
            start_gunicorn,
            server.url,
            free_port(),
            1,
            {"FOOTFALL_VAR_DIR": str(tmp / "var-gunicorn")},
        )
        shoppers = http_setup(server.url, tmp, args, rng)
        gunicorn = booting.result()
    try:
        workers = psutil.Process(gunicorn.pid).children()
        if len(workers) != 1:
            raise RuntimeError(f"expected one gunicorn worker, found {len(workers)}")
        procs = {"server": workers[0], "redis": redis_proc}
        log(
            f"http: gunicorn -k gevent -w 1 on {gunicorn.url} (worker {workers[0].pid}); "
            f"{args.connections} keep-alive connections from one load process"
        )
        # One request of each kind alone first: the worker loads its caches (stores, views).
        conn = http.client.HTTPConnection("127.0.0.1", gunicorn.port, timeout=60.0)
        t = time.perf_counter()
        conn.request(
            "GET", "/api/game/spawns", headers={"Authorization": f"Bearer {shoppers[0][0]}"}
        )
        resp = conn.getresponse()
        body = resp.read()
        cold_ms = (time.perf_counter() - t) * 1000.0
        conn.close()
        if resp.status != 200:
            raise RuntimeError(f"GET /api/game/spawns answered {resp.status}: {body[:300]!r}")
        log(f"http: first (cold) spawns query answered in {cold_ms:.0f} ms")
        spawns = run_load("spawns", gunicorn.port, tmp, args, shoppers, procs, args.profile)
        log(
            f"http: GET /api/game/spawns {spawns['per_s']:,.0f}/s, p50 {spawns['p50_ms']} ms, "
            f"p99 {spawns['p99_ms']} ms, statuses {spawns['statuses']}, "
            f"{spawns['spawns_per_answer']} spawns per answer; CPU % of a core {spawns['cpu']}, "
            f"server {spawns['server_cpu_ms_per_request']} ms/request"
        )
        targets = [s for s in shoppers if s[5]]
        catches = run_load("catches", gunicorn.port, tmp, args, targets, procs, args.profile)
        log(
            f"http: POST /api/game/catches {catches['per_s']:,.0f}/s, p50 {catches['p50_ms']} "
            f"ms, p99 {catches['p99_ms']} ms, statuses {catches['statuses']}, outcomes "
            f"{catches['outcomes']}; waiting for a shopper out of cooldown "
            f"{catches['idle_conn_s']} connection-s; CPU % of a core {catches['cpu']}, "
            f"server {catches['server_cpu_ms_per_request']} ms/request"
        )
        if catches["idle_conn_s"] > 0.01 * args.connections * args.http_duration and not args.quick:
            log(
                "http: WARNING the connections waited for shoppers out of cooldown: the catch "
                "rate is bounded by --http-shoppers (each throws once per 10 s), raise it"
            )
        if catches.get("errors"):
            log(f"http: first unexpected answers: {catches['errors']}")
    finally:
        gunicorn.close()
    return {
        "spawns": spawns,
        "catches": catches,
        "shoppers": len(shoppers),
        "shoppers_with_target": len(targets),
        "cold_spawns_ms": round(cold_ms, 1),
    }


# -- the load generator (a separate process) -------------------------------------------------
_OUTCOME_RE = re.compile(rb'"outcome": ?"(\w+)"')
_CODE_RE = re.compile(rb'"code": ?"(\w+)"')
_THROW = (
    b'{"spawn_id":"%s","fix":{"lat":%.7f,"lon":%.7f,"accuracy_m":%.1f,'
    b'"recorded_at":%.3f,"speed_mps":%.2f}}'
)
_NEXT_SPAWN = {"ALREADY_CAUGHT", "FLED", "SPAWN_EXPIRED", "SPAWN_NOT_FOUND", "TOO_FAR"}


class _Conn:
    __slots__ = ("sock", "buf", "sent", "queue", "req", "shopper", "wait_until", "idle_since")

    def __init__(self) -> None:
        self.sock: socket.socket | None = None
        self.buf = b""
        self.sent = 0.0
        self.queue: deque = deque()
        self.req: bytes | None = None
        self.shopper = -1
        self.wait_until = 0.0
        self.idle_since = 0.0


def loadgen_main(spec_path: str) -> int:
    """Keep `connections` keep-alive connections busy, one request in flight on each.

    One epoll loop over plain sockets, requests built as bytes, responses framed by
    Content-Length. Each connection owns a disjoint group of shoppers. For catches, a shopper
    throws again only after the game's cooldown (10 s, real time here) and moves on to their
    next spawn once the last one was caught, fled, or is gone; when all of a connection's
    shoppers are cooling down, it waits (reported as idle_conn_s).
    """
    spec = json.loads(Path(spec_path).read_text())
    mode, port = spec["mode"], spec["port"]
    rng = random.Random(spec["seed"])
    cooldown = spec["cooldown_s"] + 0.05
    host = f"127.0.0.1:{port}".encode()
    shoppers = spec["shoppers"]
    n = max(1, min(spec["connections"], len(shoppers)))
    tokens = [s[0].encode() for s in shoppers]
    spawn_req = [
        b"GET /api/game/spawns HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
        b"\r\n" % (host, tok)
        for tok in tokens
    ]
    head = (
        b"POST /api/game/catches HTTP/1.1\r\nHost: "
        + host
        + b"\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n"
    )
    next_spawn = [0] * len(shoppers)
    sel = selectors.DefaultSelector()
    conns = [_Conn() for _ in range(n)]
    for j, c in enumerate(conns):
        c.queue = deque((k, 0.0) for k in range(j, len(shoppers), n))  # (shopper, ready at)

    def connect(c: _Conn) -> None:
        if c.sock is not None:
            sel.unregister(c.sock)
            c.sock.close()
        sock = socket.create_connection(("127.0.0.1", port), timeout=10.0)
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.sock, c.buf = sock, b""
        sel.register(sock, selectors.EVENT_READ, c)

    def next_request(c: _Conn, now: float) -> bytes | None:
        if mode == "spawns":
            j = c.queue[0][0]
            c.queue.rotate(-1)
            return spawn_req[j]
        while c.queue:
            j, ready_at = c.queue[0]
            if next_spawn[j] >= len(shoppers[j][5]):
                c.queue.popleft()  # nothing left within reach
                continue
            if ready_at > now:
                c.wait_until = ready_at
                return None
            c.queue.popleft()
            c.shopper = j
            _, lat, lon, acc, speed, spawns = shoppers[j]
            body = _THROW % (
                spawns[next_spawn[j]].encode(),
                lat + rng.gauss(0.0, 2.0) / M_PER_DEG,
                lon + rng.gauss(0.0, 2.0) / (M_PER_DEG * 0.855),
                acc,
                time.time(),
                speed,
            )
            return head % (tokens[j], len(body)) + body
        c.wait_until = math.inf
        return None

    def send(c: _Conn, now: float) -> None:
        nonlocal idle
        waited = c.req is None and c.idle_since > 0.0
        c.req = next_request(c, now)
        if c.req is not None:
            if waited:  # the time this connection had no shopper out of cooldown, in window
                idle += max(0.0, min(now, end) - max(c.idle_since, begin))
                c.idle_since = 0.0
            c.sent = time.perf_counter()
            c.sock.sendall(c.req)
        elif not waited:
            c.idle_since = now

    for c in conns:
        connect(c)
    begin = spec["start_at"] + spec["warmup"]
    end = begin + spec["duration"]
    time.sleep(max(0.0, spec["start_at"] - time.time()))
    cpu0, wall0 = time.process_time(), time.perf_counter()
    perf = time.perf_counter
    lat_ms: list[float] = []
    statuses: Counter = Counter()
    outcomes: Counter = Counter()
    errors: list[str] = []
    spawns_seen = answers = reconnects = 0
    idle = 0.0
    now = time.time()
    for c in conns:
        send(c, now)
    while now < end:
        timeout = 0.2
        for c in conns:
            if c.req is None:
                timeout = min(timeout, max(0.0, c.wait_until - now))
        ready = sel.select(timeout)
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
                if c.req is not None:
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
            status = buf[9:12].decode()
            body = buf[he + 4 : stop]
            code = ""
            if mode == "catches":
                j = c.shopper
                if status == "200":
                    m = _OUTCOME_RE.search(body)
                    outcome = m.group(1).decode() if m else "?"
                    if counting:
                        outcomes[outcome] += 1
                    if outcome in ("caught", "fled"):
                        next_spawn[j] += 1
                else:
                    m = _CODE_RE.search(body)
                    code = m.group(1).decode() if m else "?"
                    if code in _NEXT_SPAWN:
                        next_spawn[j] += 1
                c.queue.append((j, time.time() + cooldown))
            if counting:
                lat_ms.append((done - c.sent) * 1000.0)
                statuses[f"{status}:{code}" if code else status] += 1
                if mode == "spawns" and status == "200":
                    spawns_seen += body.count(b'"rarity"')
                    answers += 1
            unexpected = status[:1] not in "24" or (status != "200" and code in ("", "?"))
            if unexpected and len(errors) < 3:
                errors.append(f"{status} {body[:300]!r}")
            if b"Connection: close" in buf[:he]:
                reconnects += 1
                connect(c)
            send(c, time.time())
        now = time.time()
        for c in conns:
            if c.req is None and c.wait_until <= now:
                send(c, now)
    for c in conns:
        if c.req is None and c.idle_since > 0.0:
            idle += max(0.0, end - max(c.idle_since, begin))
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    for c in conns:
        c.sock.close()
    out = {
        "lat_ms": [round(x, 3) for x in lat_ms],
        "statuses": dict(statuses),
        "reconnects": reconnects,
        "cpu_pct": round(100.0 * cpu / wall, 1),
        "connections": n,
        "errors": errors,
    }
    if mode == "spawns":
        out["spawns_per_answer"] = round(spawns_seen / max(1, answers), 1)
    else:
        out["outcomes"] = dict(outcomes)
        out["idle_conn_s"] = round(idle, 2)
        out["shoppers_left_with_target"] = sum(
            1 for j, s in enumerate(shoppers) if next_spawn[j] < len(s[5])
        )
    print(json.dumps(out))
    return 0


# -- main ------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--shoppers", type=int, default=10_000, help="shoppers in the domain part")
    p.add_argument("--stores", type=int, default=5_000, help="demo stores to import")
    p.add_argument(
        "--duration",
        type=float,
        default=10.0,
        help="seconds spent inside Game.visible, then inside Game.catch",
    )
    p.add_argument(
        "--query-step",
        type=float,
        default=5.0,
        help="simulated seconds between two rounds of spawn queries",
    )
    p.add_argument(
        "--catch-step",
        type=float,
        default=12.0,
        help="simulated seconds between two rounds of throws (cooldown is 10 s)",
    )
    p.add_argument("--batch", type=int, default=1_000, help="shoppers per record_many call")
    p.add_argument(
        "--http-shoppers",
        type=int,
        default=12_000,
        help="shopper accounts for the HTTP part (a throw per shopper per 10 s)",
    )
    p.add_argument(
        "--http-duration",
        type=float,
        default=10.0,
        help="seconds of each timed HTTP run (spawns, then catches)",
    )
    p.add_argument(
        "--http-warmup", type=float, default=1.0, help="seconds of load before each HTTP window"
    )
    p.add_argument("--connections", type=int, default=8, help="keep-alive HTTP connections")
    p.add_argument(
        "--cooldown",
        type=float,
        default=10.0,
        help="the server's GAME_COOLDOWN_S (the load generator respects it)",
    )
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="concurrent callers in the one process for the second pass (1: skip)",
    )
    p.add_argument(
        "--catch-processes",
        type=int,
        default=1,
        help="caller processes throwing at once after the one-caller catch part; above 1, "
        "catches_per_s is theirs together (1: the one caller only)",
    )
    p.add_argument("--skip-http", action="store_true", help="run the domain part only")
    p.add_argument(
        "--profile",
        metavar="DIR",
        type=Path,
        default=None,
        help="py-spy this process during both domain loops and the gunicorn worker "
        "during both HTTP runs (collapsed stacks in DIR)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="small sizes for a smoke run of about 10 s (figures meaningless)",
    )
    p.add_argument("--_loadgen", metavar="SPEC", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.shoppers = min(args.shoppers, 500)
        args.stores = min(args.stores, 1_000)
        args.duration = min(args.duration, 1.0)
        args.http_shoppers = min(args.http_shoppers, 300)
        args.http_duration = min(args.http_duration, 1.0)
        args.http_warmup = min(args.http_warmup, 0.2)
        args.connections = min(args.connections, 4)
        args.batch = min(args.batch, 250)
    if (
        min(
            args.shoppers,
            args.stores,
            args.http_shoppers,
            args.connections,
            args.batch,
            args.catch_processes,
        )
        < 1
    ):
        p.error("sizes must be positive")
    if args.catch_step <= 10.0:
        log("note: --catch-step is not above the 10 s cooldown; expect COOLDOWN refusals")
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
    if args._loadgen:
        return loadgen_main(args._loadgen)

    def on_term(signum, frame):  # clean up the servers on SIGTERM as on Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    import psutil

    from app.extensions import make_redis
    from app.redis_supervisor import EmbeddedRedis, free_port
    from core.clock import FrozenClock
    from game import Game, GameSettings
    from game.spawns import SLOT_S
    from geo.demo import generate_stores
    from geo.engine import EngineSettings, LocationEngine
    from geo.stores import StoreCatalog
    from promotions import CouponCodec, Promotions

    notes = machine_notes()
    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="game-bench-"))
    server = None
    try:
        # AOF on with fsync every second, as in production; no automatic rewrite during the
        # run (an empty server would rewrite each time the file doubles, see promo_bench).
        server = EmbeddedRedis(
            tmp / "redis",
            free_port(),
            appendonly=True,
            extra_args=["--auto-aof-rewrite-min-size", "8gb"],
        )
        server.start()
        r = make_redis(server.url)  # the client the app builds
        info = r.info("server")
        notes["valkey"] = info.get("valkey_version") or info.get("redis_version")
        redis_proc = psutil.Process(server.process.pid)
        log(f"valkey {notes['valkey']} on 127.0.0.1:{server.port} (AOF everysec, data in {tmp})")

        t0 = domain_start(time.time())
        clock = FrozenClock(t0)
        catalog = StoreCatalog(r, clock)
        stores = generate_stores(args.stores)
        t = time.perf_counter()
        report = catalog.import_rows((f"stores[{i}]", dict(s)) for i, s in enumerate(stores))
        if report.written != len(stores):
            raise RuntimeError(f"store import failed: {report.to_dict()['errors'][:3]}")
        shanghai = [s for s in stores if s["city"] == "Shanghai"]
        in_box = sum(
            1 for s in shanghai if BOX[0] <= s["lat"] <= BOX[2] and BOX[1] <= s["lon"] <= BOX[3]
        )
        log(
            f"imported {report.written} stores in {time.perf_counter() - t:.2f}s; "
            f"{len(shanghai)} in Shanghai, {in_box} of them in the walking area"
        )
        promos = Promotions(r, clock, catalog, CouponCodec(COUPON_KEYS))
        engine = LocationEngine(r, catalog, clock, EngineSettings())
        game = Game(r, clock, promos, engine, GameSettings(cooldown_s=args.cooldown))
        cid, oid = make_campaign(promos, game, t0)
        url = server.url
        log(
            f"campaign {cid} live on the Shanghai stores, game with {len(SPECIES)} species, "
            f"offer {oid} for store catches; simulated time starts "
            f"{datetime.fromtimestamp(t0, SHANGHAI):%Y-%m-%d %H:%M} Shanghai"
        )

        ids = [f"gb-{i:06d}" for i in range(args.shoppers)]
        write_consent(r, ids, t0)
        walkers = [Stroller.place(rng) for _ in ids]
        positions: list = [None] * len(ids)
        t = time.perf_counter()
        verdicts = record_round(engine, clock, ids, walkers, positions, rng, 1.0, args.batch)
        log(
            f"{len(ids)} shoppers with consent and a first fix in {time.perf_counter() - t:.2f}s "
            f"(verdicts {dict(verdicts)})"
        )
        ctx = {
            "r": r,
            "redis_proc": redis_proc,
            "clock": clock,
            "game": game,
            "engine": engine,
            "rng": rng,
            "ids": ids,
            "walkers": walkers,
            "positions": positions,
            "seen": [None] * len(ids),
            "url": url,
            "cid": cid,
        }
        first = first_look(ctx)
        slot0 = int(clock.now() // SLOT_S)
        visible = run_spawn_queries(ctx, args)
        catches = run_catches(ctx, args)
        concurrent = run_concurrent(ctx, args) if args.threads > 1 else None
        one_caller = None
        if args.catch_processes > 1:
            # The sequential figure of this run stays as the baseline; the headline figures
            # and the outcomes become those of all the callers together.
            one_caller, catches = catches, run_catch_processes(ctx, args)
        slots_crossed = int(clock.now() // SLOT_S) - slot0
        http = None
        if not args.skip_http:
            http = run_http(r, server, redis_proc, tmp, args, rng)
        redis_mem = r.info("memory").get("used_memory_human")
        r.close()
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    hs = http["spawns"] if http else None
    hc = http["catches"] if http else None
    detail_keys = (
        "calls",
        "in_call_s",
        "loop_wall_s",
        "rounds",
        "p90_ms",
        "max_ms",
        "cpu_us_per_call",
        "valkey_cpu",
        "redis_commands_per_call",
        "redis_usec_per_call_by_command",
    )
    result = {
        "bench": "game",
        "spawn_queries_per_s": round(visible["per_s"], 1),
        "catches_per_s": round(catches["per_s"], 1),
        "p99_ms": max(visible["p99_ms"], catches["p99_ms"]),
        "spawn_p50_ms": visible["p50_ms"],
        "spawn_p99_ms": visible["p99_ms"],
        "catch_p50_ms": catches["p50_ms"],
        "catch_p99_ms": catches["p99_ms"],
        "outcomes": catches["outcomes"],
        "refusals": catches["refusals"],
        "caught_per_s": catches["caught_per_s"],
        "coupons_issued": catches["coupons_issued"],
        "spawns_per_query": visible["spawns_per_query"],
        "catch_processes": args.catch_processes,
        "catches_per_s_one_caller": round(one_caller["per_s"], 1) if one_caller else None,
        "catch_per_process": catches.get("per_process"),
        "catch_valkey_cpu": catches["valkey_cpu"],
        "catch_ledger": catches.get("ledger"),
        "threads": args.threads,
        "spawn_queries_per_s_threads": round(concurrent["spawns"]["per_s"], 1)
        if concurrent
        else None,
        "catches_per_s_threads": round(concurrent["catches"]["per_s"], 1) if concurrent else None,
        "threads_p99_ms": max(concurrent["spawns"]["p99_ms"], concurrent["catches"]["p99_ms"])
        if concurrent
        else None,
        "threads_catch_outcomes": concurrent["catches"]["outcomes"] if concurrent else None,
        "http_spawn_queries_per_s": round(hs["per_s"], 1) if hs else None,
        "http_spawn_p50_ms": hs["p50_ms"] if hs else None,
        "http_spawn_p99_ms": hs["p99_ms"] if hs else None,
        "http_catches_per_s": round(hc["per_s"], 1) if hc else None,
        "http_catch_p50_ms": hc["p50_ms"] if hc else None,
        "http_catch_p99_ms": hc["p99_ms"] if hc else None,
        "quick": args.quick,
        "visible": {k: visible[k] for k in detail_keys}
        | {
            k: visible[k]
            for k in (
                "refusals",
                "spawns_seen_by_kind",
                "spawns_seen_by_rarity",
                "fix_verdicts",
                "gc_during_loop",
            )
        },
        "catch": {k: catches[k] for k in detail_keys}
        | {
            k: catches[k]
            for k in (
                "by_kind",
                "errors",
                "refusal_share",
                "caught_share",
                "points",
                "shoppers_without_target",
                "spawn_lists_refreshed",
                "fix_verdicts",
                "gc_during_loop",
            )
        },
        "http": None
        if http is None
        else {
            "shoppers": http["shoppers"],
            "shoppers_with_target": http["shoppers_with_target"],
            "connections": args.connections,
            "duration_s": args.http_duration,
            "cold_spawns_ms": http["cold_spawns_ms"],
            "spawns": {
                k: hs[k]
                for k in (
                    "statuses",
                    "p90_ms",
                    "max_ms",
                    "spawns_per_answer",
                    "server_cpu_ms_per_request",
                    "reconnects",
                )
            },
            "catches": {
                k: hc[k]
                for k in (
                    "statuses",
                    "outcomes",
                    "p90_ms",
                    "max_ms",
                    "server_cpu_ms_per_request",
                    "idle_conn_s",
                    "shoppers_left_with_target",
                    "reconnects",
                )
            },
        },
        "catch_one_caller": None
        if one_caller is None
        else {
            k: one_caller[k]
            for k in (*detail_keys, "per_s", "p50_ms", "p99_ms", "outcomes", "refusals", "cpu")
        },
        "cpu": {
            "visible": visible["cpu"],
            "catch": catches["cpu"],
            "http_spawns": hs["cpu"] if hs else None,
            "http_catches": hc["cpu"] if hc else None,
        },
        "shoppers": args.shoppers,
        "stores": args.stores,
        "durations_s": {"domain": args.duration, "http": args.http_duration},
        "first_look": first,
        "simulated": {
            "start": datetime.fromtimestamp(t0, SHANGHAI).isoformat(),
            "slots_crossed": slots_crossed,
        },
        "redis": {"used_memory": redis_mem},
        "machine": notes,
        "run_s": round(time.monotonic() - _STARTED, 1),
    }
    if args.profile is not None:
        result["profiled"] = str(args.profile)
        result["profile"] = {"visible": visible.get("profile"), "catch": catches.get("profile")}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
