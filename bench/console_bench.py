"""Marketer console benchmark: a 5,000-store import, the map's one request, the live funnel's
snapshot, and the console's map in a real Chromium (load, then panning and zooming).

Real parts only, all started and stopped here on 127.0.0.1: an embedded Valkey (AOF everysec),
`gunicorn -k gevent -w 1 wsgi:app` (tests/servers.py start_gunicorn: FOOTFALL_ENV=production,
LOG_REQUESTS=0) with MAP_TILE_URL="" (no tiles, no network), an in-process helper app on the same
Redis for the marketer's account and the funnel's traffic, and the project's headless Chromium
(tests/browser.py launch_chromium, with its fontconfig).

    python bench/console_bench.py            # 5,000 stores, ~2 minutes
    python bench/console_bench.py --quick    # 500 stores, short phases (~30 s; figures mean little)

1. Import: POST /api/stores/import?partial=false&format=csv with a generated CSV (text/csv), the
   request static/console/importer.js sends; then the same stores as GeoJSON (they replace the
   CSV's: the same ids). Wall time and the server's CPU.
2. Map: GET /api/stores/map (the overview map's one request for every store) and, to compare,
   GET /api/stores/export.geojson, one after the other on one keep-alive connection.
3. Funnel: a live campaign targeting every store by id, with a visit offer; visits (geo events
   as the location engine appends them, read by the promotions VisitConsumer, which counts them
   and issues visit coupons) over several days and many stores, a share of the coupons redeemed
   at the till; then promotions Reports.snapshot(cid) in this process, which is what one server
   process computes per watched campaign every FUNNEL_PUSH_S, and the /marketer watch ack
   (which carries a snapshot) from the gunicorn worker.
4. Browser: a marketer signs in to /console/#stores; `map_ready_ms` is the time from
   navigation (a reload) until the overview map's data-stores attribute equals the store count;
   then the mouse drags and wheels the map for a few seconds while the page records
   requestAnimationFrame intervals; then a store's page (its fence editor) opened from the
   overview by its hash route.

Progress goes to stderr; the last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.promo_bench import (  # noqa: E402
    CpuWindow,
    finish_profile,
    gunicorn_procs,
    machine_notes,
    make_setup_app,
    start_profile,
)

PASSWORD = "bench-password-1"
SHANGHAI = (31.2304, 121.4737)
BRANDS = ("Acme", "Bolt", "Cirrus", "Dragon", "Ember", "Fjord", "Grove", "Harbor")
COUPON_VALUE_FEN = 2000
LONG_FRAME_MS = 50.0

_STARTED = time.monotonic()


def log(message: str) -> None:
    """Print a progress line to stderr."""
    print(
        f"[console-bench {time.monotonic() - _STARTED:6.1f}s] {message}",
        file=sys.stderr,
        flush=True,
    )


def pct(values: list[float], q: float) -> float:
    """Return the q-quantile of the values (0.0 when empty), rounded to 0.01."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


# -- stores ----------------------------------------------------------------------------------
def make_stores(n: int, seed: int = 10) -> list[dict]:
    """n stores spread over Shanghai (denser in the centre), circle fences of 30-250 m; about
    two thirds with weekly opening hours, the others always open (no hours)."""
    rng = random.Random(seed)
    stores = []
    for i in range(n):
        # Half within ~5 km of People's Square, the rest out to ~25 km.
        spread = 0.045 if rng.random() < 0.5 else 0.16
        lat = SHANGHAI[0] + max(-0.25, min(0.25, rng.gauss(0.0, spread)))
        lon = SHANGHAI[1] + max(-0.3, min(0.3, rng.gauss(0.0, spread * 1.15)))
        brand = BRANDS[i % len(BRANDS)]
        hours = None
        if rng.random() < 0.67:
            opens = rng.choice(("09:00", "10:00", "10:30"))
            closes = rng.choice(("21:00", "22:00", "22:30"))
            days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
            hours = {"tz": "Asia/Shanghai", "weekly": {d: [[opens, closes]] for d in days}}
        stores.append(
            {
                "id": f"cb-{i:05d}",
                "name": f"{brand} Shanghai #{i}",
                "brand": brand,
                "city": "Shanghai",
                "lat": round(lat, 6),
                "lon": round(lon, 6),
                "address": f"{i} Bench Road, Shanghai",
                "opening_hours": hours,
                "fence": {"type": "circle", "radius_m": rng.randint(30, 250)},
            }
        )
    return stores


def stores_csv(stores: list[dict]) -> str:
    """The import's CSV: id,name,brand,city,lat,lon,address,tz,hours,fence (JSON in the last
    two), as a marketer's spreadsheet would export it."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(
        ("id", "name", "brand", "city", "lat", "lon", "address", "tz", "hours", "fence")
    )
    for s in stores:
        hours = s["opening_hours"]
        writer.writerow(
            (
                s["id"],
                s["name"],
                s["brand"],
                s["city"],
                f"{s['lat']:.6f}",
                f"{s['lon']:.6f}",
                s["address"],
                hours["tz"] if hours else "",
                json.dumps(hours, separators=(",", ":")) if hours else "",
                json.dumps(s["fence"], separators=(",", ":")),
            )
        )
    return buf.getvalue()


def stores_geojson(stores: list[dict]) -> str:
    """The same stores as an RFC 7946 FeatureCollection of Point features."""
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [s["lon"], s["lat"]]},
            "properties": {
                k: s[k]
                for k in ("id", "name", "brand", "city", "address", "opening_hours", "fence")
            },
        }
        for s in stores
    ]
    return json.dumps({"type": "FeatureCollection", "features": features}, separators=(",", ":"))


# -- 1. import -------------------------------------------------------------------------------
def part_import(http, base: str, headers: dict, procs: dict, body: str, fmt: str, n: int) -> dict:
    """POST the file as the console's importer does; return wall time, server CPU, counts."""
    content_type = "text/csv" if fmt == "csv" else "application/geo+json"
    data = body.encode()
    window = CpuWindow(procs)
    t0 = time.perf_counter()
    response = http.post(
        f"{base}/api/stores/import",
        params={"partial": "false", "format": fmt},
        data=data,
        headers={**headers, "Content-Type": content_type, "Accept": "application/json"},
        timeout=600,
    )
    wall = time.perf_counter() - t0
    cpu = window.stop()
    if response.status_code != 201:
        raise RuntimeError(f"import ({fmt}) answered {response.status_code}: {response.text[:500]}")
    report = response.json()
    if report["written"] != n or report["errors"]:
        raise RuntimeError(
            f"import ({fmt}) wrote {report['written']} of {n}: {report['errors'][:3]}"
        )
    log(
        f"import {fmt}: {n} stores, {len(data) / 1e6:.2f} MB in {wall:.2f}s "
        f"(server {cpu.get('server', 0)} % of a core)"
    )
    return {
        "s": round(wall, 3),
        "bytes": len(data),
        "received": report["received"],
        "written": report["written"],
        "rejected": report["rejected"],
        "server_cpu_s": round(cpu.get("server", 0.0) * wall / 100.0, 3),
        "cpu": cpu,
    }


# -- 2. map ----------------------------------------------------------------------------------
def part_get(http, url: str, headers: dict, procs: dict, repeats: int, count) -> dict:
    """GET a URL `repeats` times in a row (one warm-up first); latency, size, server CPU."""
    first = http.get(url, headers=headers, timeout=60)
    if first.status_code != 200:
        raise RuntimeError(f"GET {url} answered {first.status_code}: {first.text[:300]}")
    answered = count(first.json())
    times = []
    window = CpuWindow(procs)
    t0 = time.perf_counter()
    for _ in range(repeats):
        t = time.perf_counter()
        response = http.get(url, headers=headers, timeout=60)
        body = response.content
        times.append((time.perf_counter() - t) * 1000.0)
        if response.status_code != 200:
            raise RuntimeError(f"GET {url} answered {response.status_code}")
    wall = time.perf_counter() - t0
    cpu = window.stop()
    return {
        "p50_ms": pct(times, 0.5),
        "p95_ms": pct(times, 0.95),
        "max_ms": round(max(times), 2),
        "requests": repeats,
        "bytes": len(body),
        "gzip_bytes": len(gzip.compress(body, 6)),
        "answered": answered,
        "server_cpu_ms_per_request": round(
            cpu.get("server", 0.0) * wall / 100.0 * 1000 / repeats, 2
        ),
        "cpu": cpu,
    }


# -- 3. funnel -------------------------------------------------------------------------------
def make_campaign(promos, store_ids: list[str], days: int) -> tuple[str, str]:
    """A live campaign started `days` + 1 days ago, targeting every store by id, with an
    offer issued on a dwell visit (one per shopper, store and day) and redeemable at the till."""
    from promotions.models import CampaignIn, OfferIn

    now = time.time()
    campaign = promos.campaigns.create(
        CampaignIn(
            name="Bench: every store",
            starts_at=now - (days + 1) * 86_400,
            ends_at=now + 30 * 86_400,
            timezone="Asia/Shanghai",
            targets={"stores": store_ids},
            budget={"count": 10_000_000},
        ),
        actor="bench",
    )
    cid = campaign["id"]
    offer = promos.campaigns.create_offer(
        cid,
        OfferIn(
            name="20 off a visit",
            kind="amount_off",
            amount_off_fen=COUPON_VALUE_FEN,
            channels=["visit", "manual"],
            visit_trigger="dwell",
            caps={"total": 10_000_000, "per_store_day": 100_000},
        ),
        actor="bench",
    )
    promos.campaigns.transition(cid, "scheduled", actor="bench")
    status = promos.campaigns.get(cid)["status"]
    if status != "live":
        raise RuntimeError(f"campaign {cid} is {status}, not live")
    return cid, offer["id"]


def make_traffic(app, r, cid: str, store_ids: list[str], args) -> dict:
    """Visits over `args.days` past days: geo events appended as the location engine does,
    handled by the promotions VisitConsumer on a clock that follows them (so coupons are
    issued on the visit's day and hour), and a share of the coupons redeemed at the store's
    till a few minutes later. Store popularity is skewed (a few busy stores, a long tail)."""
    from core.clock import FrozenClock
    from promotions import Actor, Promotions
    from tests.promo_helpers import append_geo_event

    live = app.extensions["promotions"]
    clock = FrozenClock(time.time() - args.days * 86_400)
    promos = Promotions(r, clock, live.campaigns.catalog, live.codec)
    consumer = promos.consumer("console-bench", batch=200)
    consumer.ensure_group()
    rng = random.Random(7)
    weights = [1.0 / (1 + i) ** 0.6 for i in range(len(store_ids))]
    rng.shuffle(weights)
    shoppers = [f"bench-shopper-{i}" for i in range(args.shoppers)]
    per_day = max(1, args.visits // args.days)
    start = time.time() - args.days * 86_400
    issued = redeemed = refused = 0
    visits = 0
    t0 = time.perf_counter()
    for day in range(args.days):
        day_start = start + day * 86_400
        stamps = sorted(day_start + rng.uniform(0, 12 * 3600) for _ in range(per_day))
        picks = rng.choices(store_ids, weights=weights, k=per_day)
        for chunk in range(0, per_day, 200):
            coupons = []
            for at, sid in zip(
                stamps[chunk : chunk + 200], picks[chunk : chunk + 200], strict=True
            ):
                shopper = rng.choice(shoppers)
                kind = "dwell" if rng.random() < 0.6 else "enter"
                append_geo_event(r, shopper, sid, kind, at)
                visits += 1
            clock.set(stamps[min(chunk + 199, per_day - 1)])
            while True:
                results = []
                consumer.on_issue = results.append
                if consumer.run_once() == 0:
                    break
                for result in results:
                    if result.outcome == "issued":
                        issued += 1
                        coupons.append(result.coupon)
                    elif result.outcome == "refused":
                        refused += 1
            clock.advance(600)
            for coupon in coupons:
                if rng.random() < args.redeem_share:
                    till = Actor(f"staff-{coupon['store_id']}", "staff", coupon["store_id"])
                    promos.coupons.redeem(
                        promos.codec.token(coupon["id"]), 10_000, f"order-{coupon['id']}", till
                    )
                    redeemed += 1
    log(
        f"traffic: {visits} visits over {args.days} days, {issued} coupons issued, "
        f"{redeemed} redeemed ({time.perf_counter() - t0:.1f}s)"
    )
    return {"visits": visits, "issued": issued, "redeemed": redeemed, "refused": refused}


def part_snapshot(app, r, redis_proc, cid: str, repeats: int) -> dict:
    """Reports.snapshot(cid) in this process, `repeats` times after a cold first one."""
    import psutil

    from promotions import keys as promo_keys

    reports = app.extensions["promotions"].reports
    t = time.perf_counter()
    snapshot = reports.snapshot(cid)
    cold_ms = (time.perf_counter() - t) * 1000.0
    size = len(json.dumps(snapshot, separators=(",", ":"), default=str).encode())
    times = []
    window = CpuWindow({"bench_process": psutil.Process(), "redis": redis_proc})
    t0 = time.perf_counter()
    for _ in range(repeats):
        t = time.perf_counter()
        reports.snapshot(cid)
        times.append((time.perf_counter() - t) * 1000.0)
    wall = time.perf_counter() - t0
    cpu = window.stop()
    per_call = wall / repeats * 1000.0 / 100.0
    log(
        f"snapshot: cold {cold_ms:.0f} ms, p50 {pct(times, 0.5)} ms, {size / 1e3:.0f} KB, "
        f"{snapshot['funnel']['visits']} visits"
    )
    return {
        "p50_ms": pct(times, 0.5),
        "p95_ms": pct(times, 0.95),
        "cold_ms": round(cold_ms, 2),
        "calls": repeats,
        "bytes": size,
        "stats_fields": r.hlen(promo_keys.stats(cid)),
        "stores_in_snapshot": len(snapshot["stores"]),
        "heatmap_stores": len(snapshot["heatmap"]["stores"]),
        "days": len(snapshot["days"]),
        "funnel": snapshot["funnel"],
        "cpu_ms_per_call": {
            k: round(v * per_call, 2) for k, v in cpu.items() if k in ("bench_process", "redis")
        },
        "cpu": cpu,
    }


def probe_healthz(base: str, seconds: float) -> dict:
    """GET /healthz every 25 ms for `seconds`; the latencies show when the worker is busy."""
    import requests

    times = []
    with requests.Session() as http:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            t = time.perf_counter()
            http.get(base + "/healthz", timeout=30).raise_for_status()
            times.append((time.perf_counter() - t) * 1000.0)
            time.sleep(0.025)
    return {
        "requests": len(times),
        "p50_ms": pct(times, 0.5),
        "p99_ms": pct(times, 0.99),
        "max_ms": round(max(times), 2),
        "over_100ms": sum(1 for t in times if t > 100),
    }


def part_watch(base: str, token: str, cid: str, args, procs: dict, redis_url: str) -> dict:
    """The /marketer socket: the watch ack (it carries a snapshot the worker computes), then
    the periodic pushes while the campaign is watched, and what they cost the worker: its CPU
    and the latency of GET /healthz on the same worker, against a window without a watcher.
    Two watched windows: with nothing changing (the worker skips the snapshot), and with the
    statistics changing all the time (a thread here bumps their version every 0.2 s as any
    counting script does, so every period computes and pushes a full snapshot)."""
    import redis
    import socketio

    from promotions import keys as promo_keys

    baseline = probe_healthz(base, args.probe_s)
    pushes = []
    client = socketio.Client(reconnection=False)
    client.on("funnel", lambda data: pushes.append(time.monotonic()), namespace="/marketer")
    client.connect(
        base,
        transports=["websocket"],
        namespaces=["/marketer"],
        auth={"token": token},
        wait_timeout=10,
    )
    times = []
    try:
        for _ in range(args.watches + 1):
            t = time.perf_counter()
            ack = client.call("watch", {"campaign_id": cid}, namespace="/marketer", timeout=60)
            times.append((time.perf_counter() - t) * 1000.0)
            if ack.get("campaign_id") != cid or "snapshot" not in ack:
                raise RuntimeError(f"watch answered {str(ack)[:300]}")
        push_s = ack["push_s"]
        window = CpuWindow(procs)
        watched = probe_healthz(base, args.probe_s)
        cpu = window.stop()
        changer = redis.Redis.from_url(redis_url)
        stop = threading.Event()

        def change() -> None:
            while not stop.wait(0.2):
                changer.hincrby(promo_keys.stats(cid), "v", 1)

        bumper = threading.Thread(target=change, daemon=True)
        pushed_before = len(pushes)
        bumper.start()
        window = CpuWindow(procs)
        changing = probe_healthz(base, args.probe_s)
        cpu_changing = window.stop()
        stop.set()
        bumper.join()
        changer.close()
        pushes_changing = len(pushes) - pushed_before
    finally:
        client.disconnect()
    log(
        f"/marketer: watch ack p50 {pct(times[1:], 0.5)} ms; healthz max "
        f"{baseline['max_ms']} ms unwatched, {watched['max_ms']} ms watched "
        f"(worker {cpu.get('server')} % of a core, push every {push_s} s)"
    )
    log(
        f"/marketer, statistics changing: healthz max {changing['max_ms']} ms, worker "
        f"{cpu_changing.get('server')} % of a core, {pushes_changing} pushes"
    )
    return {
        "p50_ms": pct(times[1:], 0.5),
        "p95_ms": pct(times[1:], 0.95),
        "first_ms": round(times[0], 2),
        "push_s": push_s,
        "healthz_unwatched": baseline,
        "healthz_watched": watched,
        "worker_cpu_watched": cpu.get("server"),
        "cpu": cpu,
        "healthz_watched_changing": changing,
        "worker_cpu_watched_changing": cpu_changing.get("server"),
        "pushes_changing": pushes_changing,
        "cpu_changing": cpu_changing,
    }


# -- 4. browser ------------------------------------------------------------------------------
class BrowserCpu:
    """psutil-like handle whose cpu_times() add up every live process of the project's
    Chromium (the browser, its renderers and GPU/utility processes)."""

    def __init__(self, executable: Path) -> None:
        self.executable = str(executable)
        self.pid = -1

    def cpu_times(self):
        import psutil

        user = system = 0.0
        for proc in psutil.process_iter(["exe", "cmdline", "cpu_times"]):
            cmd = proc.info["cmdline"] or []
            if (cmd and cmd[0] == self.executable) or proc.info["exe"] == self.executable:
                times = proc.info["cpu_times"]
                if times is not None:
                    user += times.user
                    system += times.system
        return SimpleNamespace(user=user, system=system)

    def pids(self) -> set[int]:
        import psutil

        return {
            proc.pid
            for proc in psutil.process_iter(["exe", "cmdline"])
            if (proc.info["cmdline"] or [""])[0] == self.executable
            or proc.info["exe"] == self.executable
        }


def without(cpu: dict, pids: set[int]) -> dict:
    """A CPU window's figures without our browser's processes among `top_others`."""
    top = {
        k: v for k, v in cpu.get("top_others", {}).items() if int(k.rpartition(":")[2]) not in pids
    }
    out = {k: v for k, v in cpu.items() if k != "top_others"}
    if top:
        out["top_others"] = top
    return out


# requestAnimationFrame timestamps, one recorder at a time (a stopped recorder's last callback
# may still be pending when the next starts: the generation number ends it).
FRAMES_START = """() => {
  const gen = (window.__framesGen = (window.__framesGen || 0) + 1);
  window.__frames = [];
  const step = (t) => { if (window.__framesGen !== gen) return; window.__frames.push(t);
                        requestAnimationFrame(step); };
  requestAnimationFrame(step);
}"""
FRAMES_STOP = """() => { window.__framesGen += 1; return window.__frames; }"""
READY = """(n) => {
  const el = document.querySelector('#stores-map');
  return el && el.dataset.stores === String(n) ? performance.now() : false;
}"""
# Where the time to a ready map went, from the Resource Timing entry of GET /api/stores/map:
# the page's start (HTML, modules, sign-in check, an empty map) until the request went out, the
# request until its last byte, and the rest (JSON.parse, 5,000 markers into the clusters).
PHASES = """(ready) => {
  const entry = performance.getEntriesByType('resource')
    .filter((e) => e.name.includes('/api/stores/map')).pop();
  if (!entry) return null;
  const r = (x) => Math.round(x * 10) / 10;
  return { boot: r(entry.startTime), request: r(entry.responseEnd - entry.startTime),
           parse_and_place: r(ready - entry.responseEnd), transfer_bytes: entry.transferSize };
}"""
FENCE_READY = """(id) => {
  const json = document.querySelector('#fence-json');
  const heading = document.querySelector('#store-name');
  return json && json.value && heading && document.querySelector('#fence-map .leaflet-interactive')
    ? performance.now() - window.__navStarted : false;
}"""


# The page position of the centre of the markercluster icon with the most stores within the
# middle of the map (a margin of 15 % each side), or null.
BIGGEST_CLUSTER = """() => {
  const map = document.querySelector('#stores-map').getBoundingClientRect();
  let best = null, most = 0;
  for (const el of document.querySelectorAll('#stores-map .marker-cluster')) {
    const r = el.getBoundingClientRect();
    const x = r.left + r.width / 2, y = r.top + r.height / 2;
    if (x < map.left + 0.15 * map.width || x > map.right - 0.15 * map.width) continue;
    if (y < map.top + 0.15 * map.height || y > map.bottom - 0.15 * map.height) continue;
    const n = parseInt(el.textContent, 10) || 0;
    if (n > most) { most = n; best = [x, y]; }
  }
  return best;
}"""


def frame_stats(stamps: list[float]) -> dict:
    intervals = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    return {
        "frames": len(intervals),
        "p50_ms": pct(intervals, 0.5),
        "p95_ms": pct(intervals, 0.95),
        "max_ms": round(max(intervals), 2) if intervals else 0.0,
        "long_frames": sum(1 for i in intervals if i > LONG_FRAME_MS),
        "long_ms_total": round(sum(i for i in intervals if i > LONG_FRAME_MS), 1),
    }


def pan_and_zoom(page, seconds: float, rng: random.Random) -> dict:
    """Drag and wheel the overview map with the mouse for `seconds`; return what was seen.

    Each round drags the map away and back (12 mouse moves each way, so the view stays over
    the stores), then turns the wheel one notch: in on the biggest cluster in view from the
    fitted zoom to 17 (fences are drawn from 15 on), then out at the map's centre to one level
    below where it started.
    """
    box = page.locator("#stores-map").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    element = page.locator("#stores-map")
    start = int(float(element.get_attribute("data-zoom") or 10))
    zooms, fences = set(), {}
    drags = wheels = 0
    deadline = time.monotonic() + seconds
    zoom_in = True
    while time.monotonic() < deadline:
        dx, dy = rng.uniform(-300, 300), rng.uniform(-150, 150)
        for sign in (1, -1):
            page.mouse.move(cx, cy)
            page.mouse.down()
            page.mouse.move(cx + sign * dx, cy + sign * dy, steps=12)
            page.mouse.up()
            drags += 1
        # Zoom in where the stores are, as a marketer does: on the biggest cluster in view
        # (its marker's centre), or the map's centre when no cluster shows.
        wx, wy = (page.evaluate(BIGGEST_CLUSTER) or [cx, cy]) if zoom_in else (cx, cy)
        page.mouse.move(wx, wy)
        page.mouse.wheel(0, -60 if zoom_in else 60)  # Leaflet: 60 px of wheel = one level
        wheels += 1
        page.wait_for_timeout(150)  # Leaflet's wheel debounce (40 ms) and zoom animation
        level = int(float(element.get_attribute("data-zoom") or start))
        zooms.add(level)
        fences[level] = max(fences.get(level, 0), int(element.get_attribute("data-fences") or 0))
        if level >= 17:
            zoom_in = False
        elif level <= start - 1:
            zoom_in = True
    return {
        "drags": drags,
        "wheel_notches": wheels,
        "start_zoom": start,
        "zooms_seen": sorted(zooms),
        "max_fences_drawn_by_zoom": {str(k): v for k, v in sorted(fences.items())},
    }


def part_browser(base: str, email: str, n: int, store_ids: list[str], args, tmp: Path) -> dict:
    """The console in the project's Chromium: map load, pan/zoom frames, a store's page."""
    from playwright.sync_api import sync_playwright

    from tests.browser import BROWSER, browser_env, launch_chromium
    from tests.test_browser_consoles import sign_in

    if not BROWSER.exists():
        raise RuntimeError(f"no browser at {BROWSER}: run `python3 dev.py setup`")
    rng = random.Random(3)
    out: dict = {}
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright, browser_env(tmp / "fonts"))
        procs_cpu = {"browser": BrowserCpu(BROWSER)}
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
            context.set_default_timeout(120_000)
            page = context.new_page()
            page.goto(base + "/console/#stores")
            sign_in(page, email, PASSWORD)
            page.wait_for_function(READY, arg=n, polling="raf")
            log("browser: signed in, the map holds every store")
            ready, load_ms, cpu_load, phases = [], [], [], []
            for _ in range(args.reloads):
                window = CpuWindow({**procs_cpu, **args.server_procs})
                page.reload()
                at = page.wait_for_function(READY, arg=n, polling="raf").json_value()
                cpu_load.append(without(window.stop(), procs_cpu["browser"].pids()))
                ready.append(at)
                load_ms.append(float(page.locator("#stores-map").get_attribute("data-load-ms")))
                phases.append(page.evaluate(PHASES, at))
            # After data-stores is set markercluster still adds markers in chunks: record the
            # frames for a while before touching the map, to see when the page is quiet again.
            page.evaluate(FRAMES_START)
            page.wait_for_timeout(int(args.settle_s * 1000))
            settle = frame_stats(page.evaluate(FRAMES_STOP))
            log(f"browser: map ready in {[round(x) for x in ready]} ms after navigation")

            window = CpuWindow({**procs_cpu, **args.server_procs})
            page.evaluate(FRAMES_START)
            moved = pan_and_zoom(page, args.pan_s, rng)
            frames = frame_stats(page.evaluate(FRAMES_STOP))
            cpu_pan = without(window.stop(), procs_cpu["browser"].pids())
            log(
                f"browser: pan/zoom {moved['drags']} drags, zooms {moved['zooms_seen']}: "
                f"frames p50 {frames['p50_ms']} p95 {frames['p95_ms']} max {frames['max_ms']} ms, "
                f"{frames['long_frames']} long"
            )

            fence_ms = []
            for sid in rng.sample(store_ids, args.fence_pages):
                page.evaluate("() => { location.hash = '#stores'; }")
                page.wait_for_function(READY, arg=n, polling="raf")
                page.evaluate(
                    "(id) => { window.__navStarted = performance.now();"
                    " location.hash = '#stores/' + id; }",
                    sid,
                )
                fence_ms.append(
                    page.wait_for_function(FENCE_READY, arg=sid, polling="raf").json_value()
                )
            log(f"browser: fence editor ready in {[round(x) for x in fence_ms]} ms")
            context.close()
        finally:
            browser.close()
    out.update(
        {
            "map_ready_ms": ready,
            "map_fetch_and_place_ms": load_ms,
            "map_ready_phases_ms": phases,
            "after_ready": settle,
            "pan_zoom": {**moved, **frames, "seconds": args.pan_s},
            "fence_editor_ms": [round(x, 1) for x in fence_ms],
            "cpu": {"map_load_last": cpu_load[-1], "pan_zoom": cpu_pan},
        }
    )
    return out


# -- main ------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--stores", type=int, default=5000)
    p.add_argument("--map-repeats", type=int, default=30, help="GET /api/stores/map requests")
    p.add_argument("--export-repeats", type=int, default=10)
    p.add_argument("--days", type=int, default=7, help="days of funnel traffic")
    p.add_argument("--visits", type=int, default=30_000, help="visits over those days")
    p.add_argument("--shoppers", type=int, default=4000)
    p.add_argument("--redeem-share", type=float, default=0.3)
    p.add_argument("--snapshots", type=int, default=30, help="timed snapshot() calls")
    p.add_argument("--watches", type=int, default=5, help="timed /marketer watch acks")
    p.add_argument("--probe-s", type=float, default=8.0, help="healthz probe, each window")
    p.add_argument("--reloads", type=int, default=3, help="console reloads timed to map ready")
    p.add_argument("--settle-s", type=float, default=3.0)
    p.add_argument("--pan-s", type=float, default=10.0, help="seconds of dragging and wheeling")
    p.add_argument("--fence-pages", type=int, default=3)
    p.add_argument("--skip-browser", action="store_true")
    p.add_argument("--profile", type=Path, help="py-spy the gunicorn worker (import, map) here")
    p.add_argument("--quick", action="store_true", help="500 stores, short phases")
    args = p.parse_args(argv)
    if args.quick:
        args.stores = min(args.stores, 500)
        args.map_repeats, args.export_repeats = 5, 3
        args.days, args.visits, args.shoppers = 3, 600, 200
        args.snapshots, args.watches, args.reloads, args.probe_s = 5, 2, 1, 1.0
        args.settle_s, args.pan_s, args.fence_pages = 0.5, 1.5, 1
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

    notes = machine_notes()
    tmp = Path(tempfile.mkdtemp(prefix="console-bench-"))
    server = web = None
    result: dict = {}
    try:
        server = EmbeddedRedis(
            tmp / "redis",
            free_port(),
            appendonly=True,
            extra_args=["--auto-aof-rewrite-min-size", "8gb"],
        )
        server.start()
        r = redis.Redis.from_url(server.url, decode_responses=True)
        info = r.info("server")
        notes["valkey"] = info.get("valkey_version") or info.get("redis_version")
        redis_proc = psutil.Process(server.process.pid)
        log(f"valkey {notes['valkey']} on 127.0.0.1:{server.port} (AOF everysec, data in {tmp})")
        app = make_setup_app(server.url, tmp)
        accounts = app.extensions["accounts"]
        email = "bench-marketer@example.test"
        marketer = accounts.create_user(email, PASSWORD, "marketer")
        token = accounts.open_session(marketer)["token"]
        headers = {"Authorization": f"Bearer {token}"}
        server_env = {"MAP_TILE_URL": "", "FOOTFALL_VAR_DIR": str(tmp / "var")}
        web = start_gunicorn(server.url, free_port(), 1, server_env)
        worker = gunicorn_procs(web, 1)["server0"]
        procs = {"server": worker, "redis": redis_proc}
        args.server_procs = procs
        log(f"gunicorn -k gevent -w 1 on {web.url} (MAP_TILE_URL empty)")

        stores = make_stores(args.stores)
        ids = [s["id"] for s in stores]
        http = requests.Session()
        spy = None
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
            spy = start_profile(worker.pid, args.profile / "import_csv.txt", 15)
        imp_csv = part_import(http, web.url, headers, procs, stores_csv(stores), "csv", len(ids))
        if spy is not None:
            finish_profile(spy, args.profile / "import_csv.txt", "import (csv)")
        imp_geo = part_import(
            http, web.url, headers, procs, stores_geojson(stores), "geojson", len(ids)
        )
        if args.profile:
            spy = start_profile(worker.pid, args.profile / "map.txt", 15)
        store_map = part_get(
            http,
            web.url + "/api/stores/map",
            headers,
            procs,
            args.map_repeats,
            lambda doc: len(doc["items"]),
        )
        if args.profile:
            finish_profile(spy, args.profile / "map.txt", "GET /api/stores/map")
        log(
            f"map: p50 {store_map['p50_ms']} ms, {store_map['bytes'] / 1e6:.2f} MB "
            f"({store_map['gzip_bytes'] / 1e3:.0f} KB gzipped), {store_map['answered']} stores"
        )
        export = part_get(
            http,
            web.url + "/api/stores/export.geojson",
            headers,
            procs,
            args.export_repeats,
            lambda doc: sum(1 for f in doc["features"] if f["geometry"]["type"] == "Point"),
        )
        log(f"export.geojson: p50 {export['p50_ms']} ms, {export['bytes'] / 1e6:.2f} MB")

        # The server's own promotions consumer reads the geo event partitions in the same
        # group: stop it while this process replays past days' visits on its clock, then start
        # a fresh server.
        web.close()
        web = None
        cid, _ = make_campaign(app.extensions["promotions"], ids, args.days)
        traffic = make_traffic(app, r, cid, ids, args)
        snap = part_snapshot(app, r, redis_proc, cid, args.snapshots)
        web = start_gunicorn(server.url, free_port(), 1, server_env)
        args.server_procs = procs = {
            "server": gunicorn_procs(web, 1)["server0"],
            "redis": redis_proc,
        }
        log(f"gunicorn restarted on {web.url}")
        watch = part_watch(web.url, token, cid, args, procs, server.url)

        browser = None
        if not args.skip_browser:
            browser = part_browser(web.url, email, len(ids), ids, args, tmp)
        app.extensions["redis"].close()
        r.close()

        def median(values):
            return pct(values, 0.5) if values else None

        pan = browser["pan_zoom"] if browser else {}
        result = {
            "bench": "console",
            "stores": len(ids),
            "import_5000_s": imp_csv["s"],
            "import_geojson_5000_s": imp_geo["s"],
            "map_load_ms_p50": store_map["p50_ms"],
            "map_load_ms_p95": store_map["p95_ms"],
            "map_bytes": store_map["bytes"],
            "export_geojson_ms_p50": export["p50_ms"],
            "export_geojson_bytes": export["bytes"],
            "funnel_snapshot_ms_p50": snap["p50_ms"],
            "funnel_snapshot_ms_p95": snap["p95_ms"],
            "funnel_watch_ack_ms_p50": watch["p50_ms"],
            "healthz_ms_max_watched": watch["healthz_watched"]["max_ms"],
            "healthz_ms_max_unwatched": watch["healthz_unwatched"]["max_ms"],
            "healthz_ms_max_watched_changing": watch["healthz_watched_changing"]["max_ms"],
            "worker_cpu_watched_changing": watch["worker_cpu_watched_changing"],
            "map_ready_ms": median(browser["map_ready_ms"]) if browser else None,
            "frame_ms_p50": pan.get("p50_ms"),
            "frame_ms_p95": pan.get("p95_ms"),
            "frame_ms_max": pan.get("max_ms"),
            "long_frames": pan.get("long_frames"),
            "fence_editor_ms": median(browser["fence_editor_ms"]) if browser else None,
            "quick": args.quick,
            "import": {"csv": imp_csv, "geojson_replacing_the_csv_stores": imp_geo},
            "map": store_map,
            "export_geojson": export,
            "funnel": {"traffic": traffic, "snapshot": snap, "watch_ack": watch},
            "browser": browser,
            "cpu": {
                "import_csv": imp_csv["cpu"],
                "import_geojson": imp_geo["cpu"],
                "map": store_map["cpu"],
                "export_geojson": export["cpu"],
                "snapshot": snap["cpu"],
                "watched": watch["cpu"],
                **({f"browser_{k}": v for k, v in browser["cpu"].items()} if browser else {}),
            },
            "machine": notes,
            "run_s": round(time.monotonic() - _STARTED, 1),
        }
        if args.profile:
            result["profiled"] = str(args.profile)
    finally:
        if web is not None:
            web.close()
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
