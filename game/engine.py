"""The catch game: visible spawns, server-validated catches, rewards, leaderboards, anti-cheat."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import redis

from core.errors import DomainError, NotFound, ValidationFailed
from core.scripts import LuaScripts
from geo import keys as geo_keys
from geo.engine import Fix, LocationEngine
from geo.geometry import fast_distance_m
from geo.motion import Point, ground_speed_mps
from geo.stores import entry_from_record

from . import cells, keys
from .models import CATCH_RATE, FLEE_RATE, GameConfigIn
from .scripts import SOURCES
from .spawns import SLOT_S, Spawn, SpawnTable, parse_id, slots_alive

log = logging.getLogger(__name__)
CACHE_TTL_S = 1.0
NEARBY_TTL_S = 30.0
# Store spawns lie within 0.8 x the fence's extent of its anchor; fences reach at most a few
# hundred metres (larger ones are malls, whose spawns still fall inside this margin).
STORE_REACH_M = 250.0
CANDIDATES_TTL_S = 30.0
VISIBLE_LIMIT = 50
ANNOUNCE_MAX = 3  # rare_spawn events per query at most
CITY_SEARCH_M = 5_000.0
DAY_BOARD_TTL_S = 40 * 86_400
ATTEMPTS_TTL_S = 2 * 3600  # spawns live an hour at most
REWARDED_TTL_S = 3 * 3600  # a catch (and its retry) happens while the spawn lives
STRIKE_REASONS = ("spoofed_location", "spoofed_locations", "impossible_travel", "inhuman_rate")
RARE = ("rare", "epic", "legendary")


class GameRefused(DomainError):
    """A catch or query refused by a game rule; the code is the rule."""

    status = 409

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        field: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, code=code, status=status, field=field, details=details)


class GameNotifier(Protocol):
    """Where game events for one shopper go (their socket room, in the app)."""

    def game_event(self, shopper_id: str, name: str, payload: dict[str, Any]) -> None:
        """Deliver one event to the shopper."""


class NoNotifier:
    """Deliver nothing (scripts, benchmarks)."""

    def game_event(self, shopper_id: str, name: str, payload: dict[str, Any]) -> None:
        """Do nothing."""


@dataclass
class GameSettings:
    """The catch rules' tunables (from the app's configuration)."""

    visible_radius_m: float = 200.0
    interaction_radius_m: float = 80.0
    fix_max_age_s: float = 30.0
    position_max_age_s: float = 600.0
    cooldown_s: float = 10.0
    daily_cap: int = 500
    speed_lock_mps: float = 30 / 3.6
    min_trust: int = 50
    timezone: str = "Asia/Shanghai"
    strike_cooldown_s: float = 3_600.0
    shadow_s: float = 7 * 86_400.0
    rate_window_s: float = 600.0
    rate_max: int = 40  # catch attempts per window; the cooldown alone allows 60
    travel_max_mps: float = 55.0  # ~200 km/h between two catches...
    travel_min_m: float = 20_000.0  # ...over more than this is two cities minutes apart
    history_max: int = 1_000  # incidents kept per shopper (every one, counted or not)
    # HMAC key of the opaque spawn references kept in attempts, catch ids and evidence (the
    # app derives it from SECRET_KEY); None: a random key kept in Redis, shared by processes.
    reference_key: bytes | None = None


def roll_for(spawn_id: str, shopper_id: str, attempt: int) -> tuple[float, float]:
    """Return the (catch, flee) rolls of one attempt, as the catch script computes them."""
    digest = hashlib.sha1(f"{spawn_id}|{shopper_id}|{attempt}".encode()).hexdigest()
    return int(digest[:8], 16) / 2**32, int(digest[8:16], 16) / 2**32


class Game:
    """The game of one process: configuration cache, spawn tables, and the catch rules."""

    def __init__(
        self,
        r: redis.Redis,
        clock,
        promotions,
        engine: LocationEngine,
        settings: GameSettings | None = None,
        notifier: GameNotifier | None = None,
    ) -> None:
        self.r = r
        self.clock = clock
        self.promotions = promotions
        self.engine = engine
        self.settings = settings or GameSettings()
        self.notifier = notifier or NoNotifier()
        self.scripts = LuaScripts(r, SOURCES)
        self.tz = ZoneInfo(self.settings.timezone)
        self._tables: dict[str, SpawnTable] = {}
        self._version: int | None = None
        self._checked = 0.0
        self._live: tuple[float, list[str]] = (0.0, [])
        self._nearby: OrderedDict[tuple[str, int], tuple[float, list[str]]] = OrderedDict()
        self._entries: dict[str, tuple[str, Any]] = {}
        self._hours_cache: dict = {}
        self._store_slots: OrderedDict[tuple, tuple] = OrderedDict()
        self._candidate_cache: OrderedDict[tuple, tuple] = OrderedDict()
        self._cities: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._live_cache: OrderedDict[tuple, tuple] = OrderedDict()
        self._covering: OrderedDict[tuple[str, int], list[str]] = OrderedDict()
        self._announced: OrderedDict[str, set[str]] = OrderedDict()
        self._sprites: dict[tuple[str, str, int], tuple[bytes, str]] = {}
        self._ref_key = self.settings.reference_key
        # Withdrawing location consent in geo erases the game's copy of places too.
        engine.add_location_eraser(self.erase_location)

    def spawn_ref(self, spawn_id: str) -> str:
        """Return a spawn's opaque reference: the same for one spawn, but naming no place.

        A spawn id carries its map cell (~70 m) or its store; a plain hash of it could be
        reversed by trying the few cells of a city, so the reference is keyed (HMAC).
        """
        if self._ref_key is None:
            fresh = secrets.token_hex(32)
            self.r.set(keys.REFERENCE_KEY, fresh, nx=True)
            self._ref_key = (self.r.get(keys.REFERENCE_KEY) or fresh).encode()
        return hmac.new(self._ref_key, spawn_id.encode(), hashlib.sha256).hexdigest()[:24]

    # -- configuration -------------------------------------------------------------------
    def configure(self, cid: str, data: GameConfigIn) -> dict[str, Any]:
        """Set a campaign's game (species table, densities, the store-catch offer)."""
        campaign = self.promotions.campaigns.get(cid)
        if campaign["status"] == "ended":
            raise DomainError(
                "an ended campaign's game cannot change",
                code="CAMPAIGN_ENDED",
                field="campaign_id",
                status=409,
            )
        if data.offer_id is not None:
            offer = self.promotions.campaigns.get_offer(cid, data.offer_id)
            if "game" not in offer["channels"]:
                raise ValidationFailed(
                    "the offer does not allow the game channel",
                    code="offer_not_for_game",
                    field="offer_id",
                )
        doc = data.model_dump()
        doc["campaign_id"] = cid
        doc["updated_at"] = self.clock.now()
        pipe = self.r.pipeline(transaction=False)
        pipe.set(keys.config(cid), json.dumps(doc))
        pipe.sadd(keys.CAMPAIGNS, cid)
        pipe.execute()
        # The version after the configuration, in its own round trip: on Redis Cluster a
        # pipeline's commands to different nodes have no order, and a process that saw the new
        # version before the new configuration would cache the old one.
        self.r.incr(keys.VERSION)
        self._tables.clear()
        self._live = (0.0, [])
        return doc

    def config(self, cid: str) -> dict[str, Any]:
        """Return a campaign's game configuration (NotFound if it has none)."""
        raw = self.r.get(keys.config(cid))
        if raw is None:
            raise NotFound("this campaign has no game", code="game_not_found", field="campaign_id")
        return json.loads(raw)

    def _table(self, cid: str) -> SpawnTable | None:
        self._maybe_invalidate()
        table = self._tables.get(cid)
        if table is None:
            raw = self.r.get(keys.config(cid))
            if raw is None:
                return None
            table = self._tables[cid] = SpawnTable(cid, json.loads(raw))
        return table

    def _maybe_invalidate(self) -> None:
        now = time.monotonic()
        if now - self._checked < CACHE_TTL_S:
            return
        self._checked = now
        version = int(self.r.get(keys.VERSION) or 0)
        if version != self._version:
            self._version = version
            self._tables.clear()

    def live_campaigns(self) -> list[str]:
        """Return the ids of live campaigns that have a game (cached for a second)."""
        checked, ids = self._live
        if time.monotonic() - checked < CACHE_TTL_S:
            return ids
        cids = sorted(self.r.smembers(keys.CAMPAIGNS), key=int)
        ids = sorted(self.promotions.campaigns.live_ids(cids), key=int)
        self._live = (time.monotonic(), ids)
        return ids

    # -- where things are ----------------------------------------------------------------
    def _nearby_stores(self, lat: float, lon: float, radius_m: float) -> list[str]:
        """Return ids of stores whose fence may hold spawns within radius_m of the point's cell."""
        cell = cells.encode(lat, lon)
        key = (cell, int(radius_m))
        hit = self._nearby.get(key)
        now = time.monotonic()
        if hit is not None and now - hit[0] < NEARBY_TTL_S:
            return hit[1]
        lat_lo, lon_lo, lat_hi, lon_hi = cells.bounds(cell)
        half_diag = fast_distance_m(lat_lo, lon_lo, lat_hi, lon_hi) / 2
        found = self.r.geosearch(
            geo_keys.STORE_LOC,
            longitude=(lon_lo + lon_hi) / 2,
            latitude=(lat_lo + lat_hi) / 2,
            radius=half_diag + radius_m + STORE_REACH_M,
            unit="m",
        )
        self._nearby[key] = (now, list(found))
        if len(self._nearby) > 20_000:
            self._nearby.popitem(last=False)
        return list(found)

    def _store(self, store_id: str):
        """Return (record, engine entry) of a store; None if unknown.

        The promotions store cache hands out the same record object until the catalog
        changes, so the parsed entry is reused while the object is.
        """
        record = self.promotions.campaigns.store(store_id)
        if record is None:
            return None
        cached = self._entries.get(store_id)
        if cached is None or cached[0] is not record:
            cached = (record, entry_from_record(record, self._hours_cache))
            self._entries[store_id] = cached
        return cached

    def _open(self, store_id: str, now: float) -> bool:
        """Tell whether a store's fence is active (open, or always active) at a time."""
        found = self._store(store_id)
        return found is not None and found[1].active_at(now)

    def _store_spawns(self, table: SpawnTable, store_id: str, slot: int) -> list[Spawn]:
        """Return a store's spawns of one slot, if the campaign targets it and it was open."""
        found = self._store(store_id)
        if found is None:
            return []
        record, entry = found
        view = self.promotions.campaigns.view(table.cid)
        key = (table.cid, store_id, slot)
        hit = self._store_slots.get(key)
        if hit is not None and hit[0] is record and hit[1] is view and hit[2] is table:
            return hit[3]
        spawns = []
        if view.targets(record) and entry.active_at(slot * SLOT_S):
            spawns = table.in_store(store_id, entry.fence, slot)
        self._store_slots[key] = (record, view, table, spawns)
        if len(self._store_slots) > 50_000:
            self._store_slots.popitem(last=False)
        return spawns

    def _city_of(self, spawn: Spawn) -> str:
        if spawn.store_id:
            found = self._store(spawn.store_id)
            if found is not None:
                return found[0]["city"]
        # The city of the nearest store, remembered per map cell for a while: a wild catch in
        # the same street does not search again.
        cell = cells.encode(spawn.lat, spawn.lon)
        hit = self._cities.get(cell)
        now = time.monotonic()
        if hit is not None and now - hit[0] < NEARBY_TTL_S * 10:
            return hit[1]
        city = "elsewhere"
        hits = self.r.geosearch(
            geo_keys.STORE_LOC,
            longitude=spawn.lon,
            latitude=spawn.lat,
            radius=CITY_SEARCH_M,
            unit="m",
            sort="ASC",
            count=1,
        )
        if hits:
            found = self._store(hits[0])
            if found is not None:
                city = found[0]["city"]
        self._cities[cell] = (now, city)
        if len(self._cities) > 50_000:
            self._cities.popitem(last=False)
        return city

    # -- visible spawns ------------------------------------------------------------------
    def visible(
        self, shopper_id: str, radius_m: float | None = None, limit: int = VISIBLE_LIMIT
    ) -> dict[str, Any]:
        """Return the nearest spawns around the shopper's last trusted fix (at most limit)."""
        radius = radius_m or self.settings.visible_radius_m
        now = self.clock.now()
        anchor, suspended, restricted, tried = self.scripts.call(
            "view_state",
            [
                geo_keys.shopper_position(shopper_id),
                keys.state(shopper_id),
                keys.attempts(shopper_id),
            ],
            [],
        )
        if suspended == "1":
            raise GameRefused("SUSPENDED", "this account is suspended from the game", status=403)
        point = Point.decode(anchor)
        if point is None or now - point.t > self.settings.position_max_age_s:
            raise GameRefused(
                "NO_POSITION",
                "send a location fix first: spawns are shown "
                "around the last trusted fix of the last "
                f"{int(self.settings.position_max_age_s)} s",
                status=409,
            )
        lat, lon = point.lat, point.lon
        shadow = restricted is not None and float(restricted) > now
        found = self._around(lat, lon, radius, now, common_only=shadow)
        # HGETALL's flat [field, value, ...]: the references of the spawns this shopper caught.
        caught = {
            ref for ref, outcome in zip(tried[::2], tried[1::2], strict=True) if outcome == "caught"
        }
        views = []
        for d2, dx, dy, _, base in found[:limit]:
            view = base.copy()
            view["distance_m"] = round(math.sqrt(d2), 1)
            view["bearing_deg"] = round(math.degrees(math.atan2(dx, dy)) % 360.0, 1)
            view["caught"] = bool(caught) and self.spawn_ref(view["id"]) in caught
            views.append(view)
        # "Within range" means catchable from here: a rare creature worth walking the last
        # metres for. Farther ones, and ones this shopper already caught, are not pushed.
        reach = self.settings.interaction_radius_m
        rare = [
            v for v in views if v["rarity"] in RARE and v["distance_m"] <= reach and not v["caught"]
        ]
        if rare:
            self._announce(shopper_id, rare)
        return {
            "position": {"lat": lat, "lon": lon, "at": point.t},
            "radius_m": radius,
            "count": len(found),
            "spawns": views,
        }

    def _around(
        self, lat: float, lon: float, radius: float, now: float, *, common_only: bool = False
    ) -> list[tuple[float, float, float, Spawn, dict]]:
        """Return (d², east, north, spawn, base view) of the live spawns within radius,
        nearest first."""
        cell = cells.encode(lat, lon)
        kx, ky, live = self._live_near(cell, radius, now)
        x0, y0 = lon * kx, lat * ky
        r2 = radius * radius
        out = []
        for x, y, rare, spawn, base in live:
            if common_only and rare:
                continue
            dx = x - x0
            dy = y - y0
            d2 = dx * dx + dy * dy
            if d2 <= r2:
                out.append((d2, dx, dy, spawn, base))
        out.sort(key=lambda item: item[0])
        return out

    def _live_near(self, cell: str, radius: float, now: float):
        """Return (kx, ky, spawns) alive now that may lie within radius of a point of the cell.

        Spawns are born and die on slot boundaries and shops open and close on the minute, so
        the set is the same for everyone in a cell for a minute: it is built once, with each
        spawn's planar coordinates (metres, the cell's local scale: within a few hundred
        metres exact to centimetres) and the fixed part of its answer.
        """
        cids = self.live_campaigns()
        tables = tuple(self._table(cid) for cid in cids)
        key = (cell, int(radius), int(now // 60))
        hit = self._live_cache.get(key)
        if (
            hit is not None
            and hit[0] == cids
            and all(a is b for a, b in zip(hit[1], tables, strict=True))
        ):
            return hit[2]
        lat_lo, lon_lo, lat_hi, lon_hi = cells.bounds(cell)
        clat, clon = (lat_lo + lat_hi) / 2, (lon_lo + lon_hi) / 2
        ky = 110_574.0 + 1_110.0 * math.sin(math.radians(clat)) ** 2
        kx = 111_320.0 * math.cos(math.radians(clat))
        cx, cy = clon * kx, clat * ky
        # Only what a point of this cell can see: within radius of the cell's farthest corner.
        reach = radius + math.hypot((lon_hi - lon_lo) * kx, (lat_hi - lat_lo) * ky) / 2
        reach2 = reach * reach
        is_open: dict[str, bool] = {}
        live = []
        for cid, table in zip(cids, tables, strict=True):
            if table is None:
                continue
            for slot in slots_alive(now):
                for spawn in self._candidates(cid, cell, slot, radius):
                    if not spawn.born_at <= now < spawn.expires_at:
                        continue
                    x, y = spawn.lon * kx, spawn.lat * ky
                    if (x - cx) ** 2 + (y - cy) ** 2 > reach2:
                        continue
                    store = spawn.store_id
                    if store is not None:
                        open_now = is_open.get(store)
                        if open_now is None:
                            open_now = is_open[store] = self._open(store, now)
                        if not open_now:
                            continue  # a closed store's creatures are gone with its customers
                    live.append((x, y, spawn.rarity in RARE, spawn, spawn.view_at(0.0, 0.0)))
        value = (kx, ky, live)
        self._live_cache[key] = (list(cids), tables, value)
        if len(self._live_cache) > 20_000:
            self._live_cache.popitem(last=False)
        return value

    def _candidates(self, cid: str, cell: str, slot: int, radius: float) -> list[Spawn]:
        """Return every spawn of a slot that may lie within radius of a point of the cell.

        Shoppers in one street share cells, so the generation, the store lookups and the
        targeting checks are done once per (cell, slot) and kept for CANDIDATES_TTL_S.
        """
        table = self._table(cid)
        if table is None:
            return []
        key = (cid, cell, slot, int(radius))
        now = time.monotonic()
        hit = self._candidate_cache.get(key)
        if hit is not None and hit[0] is table and now - hit[1] < CANDIDATES_TTL_S:
            return hit[2]
        lat_lo, lon_lo, lat_hi, lon_hi = cells.bounds(cell)
        clat, clon = (lat_lo + lat_hi) / 2, (lon_lo + lon_hi) / 2
        spawns: list[Spawn] = []
        for near in self._cells_near(clat, clon, radius):
            spawns.extend(table.wild(near, slot))
        if table.store_density > 0:
            for store_id in self._nearby_stores(clat, clon, radius):
                spawns.extend(self._store_spawns(table, store_id, slot))
        self._candidate_cache[key] = (table, now, spawns)
        if len(self._candidate_cache) > 50_000:
            self._candidate_cache.popitem(last=False)
        return spawns

    def _cells_near(self, lat: float, lon: float, radius: float) -> list[str]:
        """Return the cells within radius of any point of the point's cell (cached)."""
        cell = cells.encode(lat, lon)
        key = (cell, int(radius))
        found = self._covering.get(key)
        if found is None:
            lat_lo, lon_lo, lat_hi, lon_hi = cells.bounds(cell)
            half_diag = fast_distance_m(lat_lo, lon_lo, lat_hi, lon_hi) / 2
            found = self._covering[key] = cells.covering(
                (lat_lo + lat_hi) / 2, (lon_lo + lon_hi) / 2, radius + half_diag
            )
            if len(self._covering) > 20_000:
                self._covering.popitem(last=False)
        return found

    def _announce(self, shopper_id: str, rare: list[dict[str, Any]]) -> None:
        """Tell the shopper's socket about rare spawns in range, once per spawn and process.

        The memory is this process's: a shopper whose requests reach two processes may hear
        of one spawn twice (spawn ids are stable, so the client drops the repeat). Asking
        Redis instead cost a round trip on most queries along a busy street.
        """
        known = self._announced.get(shopper_id)
        if known is None:
            known = self._announced[shopper_id] = set()
            if len(self._announced) > 50_000:
                self._announced.popitem(last=False)
        elif len(known) > 500:
            known.clear()  # spawns live an hour at most
        sent = 0
        for view in rare:  # nearest first
            if view["id"] not in known:
                known.add(view["id"])
                self.notifier.game_event(shopper_id, "rare_spawn", view)
                sent += 1
                if sent == ANNOUNCE_MAX:
                    break  # the rest are in the answer; a phone need not buzz ten times

    def spawn(self, spawn_id: str, now: float | None = None) -> Spawn:
        """Regenerate one spawn from its id (GameRefused SPAWN_NOT_FOUND if there is none)."""
        parsed = parse_id(spawn_id)
        missing = GameRefused(
            "SPAWN_NOT_FOUND", "no such creature here", status=404, field="spawn_id"
        )
        if parsed is None:
            raise missing
        kind, cid, where, slot, n = parsed
        if cid not in self.live_campaigns():
            raise missing
        table = self._table(cid)
        if table is None:
            raise missing
        if kind == "w":
            if len(where) != cells.PRECISION:  # other geohash lengths are not map cells
                raise missing
            try:
                found = table.wild(where, slot)
            except ValueError:  # not a geohash
                raise missing from None
        else:
            found = self._store_spawns(table, where, slot)
        if n >= len(found):
            raise missing
        spawn = found[n]
        now = self.clock.now() if now is None else now
        if kind == "s" and spawn.born_at <= now and not self._open(where, now):
            raise GameRefused(
                "SPAWN_EXPIRED",
                "the creature is gone: the store has closed",
                status=410,
                field="spawn_id",
            )
        if now < spawn.born_at:  # a later slot's creature does not exist yet
            raise missing
        if not spawn.alive_at(now):
            raise GameRefused("SPAWN_EXPIRED", "the creature is gone", status=410, field="spawn_id")
        return spawn

    # -- catching ------------------------------------------------------------------------
    def catch(self, shopper_id: str, spawn_id: str, fix: Fix) -> dict[str, Any]:
        """Try to catch a spawn at the shopper's current fix; every refusal has a code."""
        s = self.settings
        now = self.clock.now()
        (
            anchor,
            consent,
            trust,
            suspended,
            restricted,
            last_at,
            last_lat,
            last_lon,
            last_city,
            recent,
        ) = self.scripts.call(
            "catch_state",
            [
                geo_keys.shopper_position(shopper_id),
                geo_keys.shopper_state(shopper_id),
                keys.state(shopper_id),
                keys.recent(shopper_id),
                keys.last_catch(shopper_id),
            ],
            [repr(now - s.rate_window_s)],
        )
        if suspended == "1":
            raise GameRefused("SUSPENDED", "this account is suspended from the game", status=403)
        if consent != "1":
            raise DomainError(
                "the shopper has not consented to location use",
                code="consent_required",
                field="consent",
                status=403,
            )
        shadow = restricted is not None and float(restricted) > now
        spawn = self.spawn(spawn_id, now)
        if shadow and spawn.rarity in RARE:
            raise GameRefused(
                "SPAWN_NOT_FOUND", "no such creature here", status=404, field="spawn_id"
            )
        age = now - fix.recorded_at
        if age > s.fix_max_age_s or age < -s.fix_max_age_s:
            raise GameRefused(
                "STALE_FIX",
                f"the fix must be from the last {int(s.fix_max_age_s)} s",
                status=422,
                field="fix.recorded_at",
            )
        point = Point.decode(anchor)
        if point is None or now - point.t > s.position_max_age_s:
            # Without a recent trusted fix there is nothing to check this one against.
            raise GameRefused(
                "NO_POSITION",
                "send a location fix first: a catch's fix is checked against the last trusted one",
                status=409,
                field="fix",
            )
        verdict = self.engine.judge(fix, anchor, now)
        ref = self.spawn_ref(spawn.id)
        if verdict in ("mocked", "too_fast", "jump"):
            # Evidence without a place: reviewers see how far and how fast, not where (the
            # spawn by its opaque reference: its id names a map cell or a store).
            self._strike(
                shopper_id,
                "spoofed_location",
                {
                    "verdict": verdict,
                    "fix": _fix_dict(fix),
                    "spawn": _spawn_evidence(spawn, ref),
                    "moved_m": round(point.distance_m(fix.lat, fix.lon), 1),
                    "seconds_since_last_trusted": round(fix.recorded_at - point.t, 1),
                },
            )
            raise GameRefused(
                "UNTRUSTED_FIX", f"the fix looks spoofed ({verdict})", status=422, field="fix"
            )
        if verdict != "ok":
            raise GameRefused(
                "UNTRUSTED_FIX",
                f"the fix is not good enough ({verdict})",
                status=422,
                field="fix.accuracy_m",
            )
        if int(trust or 100) < s.min_trust:
            # The geo engine's verdicts on this shopper's fixes (mocked, too fast, jumps) have
            # cost the trust score: that is a strike when they come to play.
            self._strike(
                shopper_id,
                "spoofed_locations",
                {
                    "trust": int(trust),
                    "min_trust": s.min_trust,
                    "suspicious_fixes": self._suspicious_fixes(shopper_id),
                    "spawn": _spawn_evidence(spawn, ref),
                },
            )
            raise GameRefused(
                "UNTRUSTED", "recent locations of this account are not trusted", status=403
            )
        # The faster of the phone's own speed and the speed since the last trusted fix: a phone
        # that reports 0 km/h from a moving car is still locked. The time between them is
        # bounded by when the server received each, as in geo's verdict: a fix stamped in the
        # future cannot stretch it.
        speed = fix.speed_mps or 0.0
        elapsed = self.engine.elapsed_since(fix, anchor, now)
        if fix.recorded_at - point.t >= 1.0 and elapsed is not None:
            speed = max(
                speed, ground_speed_mps(point.distance_m(fix.lat, fix.lon), max(elapsed, 1.0))
            )
        if speed > s.speed_lock_mps:
            raise GameRefused(
                "SPEED_LOCKED",
                f"catching is off while moving faster than {round(s.speed_lock_mps * 3.6)} km/h",
                details={"speed_kmh": round(speed * 3.6, 1)},
            )
        distance = fast_distance_m(fix.lat, fix.lon, spawn.lat, spawn.lon)
        if distance > s.interaction_radius_m:
            raise GameRefused(
                "TOO_FAR",
                f"walk closer: catches work within {int(s.interaction_radius_m)} m",
                field="fix",
                details={"distance_m": round(distance, 1)},
            )
        if last_at is not None:
            dt = max(now - float(last_at), 1.0)
            far = fast_distance_m(float(last_lat), float(last_lon), fix.lat, fix.lon)
            if far > s.travel_min_m and ground_speed_mps(far, dt) > s.travel_max_mps:
                self._strike(
                    shopper_id,
                    "impossible_travel",
                    {
                        "from": {"city": last_city, "at": float(last_at)},
                        "to": {"city": self._city_of(spawn), "at": now},
                        "km": round(far / 1000, 1),
                        "minutes": round(dt / 60, 1),
                    },
                )
                raise GameRefused(
                    "IMPOSSIBLE_TRAVEL",
                    "two catches this far apart this soon are not possible",
                    status=422,
                    field="fix",
                )
        if recent >= s.rate_max:
            self._strike(
                shopper_id, "inhuman_rate", {"attempts": recent, "window_s": s.rate_window_s}
            )
            raise GameRefused("RATE_LIMITED", "too many catch attempts; slow down", status=429)
        city = self._city_of(spawn)
        day = datetime.fromtimestamp(now, self.tz).strftime("%Y-%m-%d")
        reply = self.scripts.call(
            "catch",
            keys.catch_keys(shopper_id),
            [
                repr(now),
                spawn.id,
                shopper_id,
                day,
                s.cooldown_s,
                s.daily_cap,
                CATCH_RATE[spawn.rarity],
                FLEE_RATE[spawn.rarity],
                f"{spawn.campaign_id}|{spawn.species}",
                ATTEMPTS_TTL_S,
                fix.lat,
                fix.lon,
                int(s.rate_window_s),
                city,
                ref,
                int(self.engine.settings.retention_s),
                f"{spawn.campaign_id}|{city.lower()}|{day}",
            ],
        )
        if reply[0] == "no":
            if reply[1] == "ALREADY_CAUGHT":
                # A retry after a crash between the catch and its reward finishes the reward.
                self._reward(shopper_id, spawn, city, day, shadow)
            raise _refusal(reply)
        outcome, attempt = reply[0], int(reply[1])
        roll, flee = roll_for(spawn.id, shopper_id, attempt)
        result: dict[str, Any] = {
            "outcome": outcome,
            "attempt": attempt,
            "roll": round(roll, 6),
            "catch_rate": CATCH_RATE[spawn.rarity],
            "spawn": spawn.view(fix.lat, fix.lon),
            "points": 0,
            "total_points": None,
            "coupon": None,
            "coupon_refused": None,
        }
        if outcome == "caught":
            result.update(self._reward(shopper_id, spawn, city, day, shadow))
        self.notifier.game_event(shopper_id, "catch_result", result)
        if outcome == "caught":
            self.notifier.game_event(
                shopper_id,
                "reward",
                {
                    "spawn_id": spawn.id,
                    "species": spawn.species,
                    "points": result["points"],
                    "total_points": result["total_points"],
                    "coupon": result["coupon"],
                },
            )
        return result

    def _reward(
        self, shopper_id: str, spawn: Spawn, city: str, day: str, shadow: bool
    ) -> dict[str, Any]:
        """Add the points to the boards and issue the store offer, once per catch."""
        # The catch id names the spawn by its opaque reference: it stays in the coupon's
        # source and the ledger, which must not place the shopper.
        catch_id = f"{self.spawn_ref(spawn.id)}|{shopper_id}"
        cid = spawn.campaign_id
        reward_keys = [
            keys.rewarded(cid, int(spawn.born_at // 3600)),
            *_board_keys(cid, city.lower(), day),
        ]
        reward_args = [catch_id, shopper_id, spawn.points, DAY_BOARD_TTL_S, REWARDED_TTL_S]

        def queue_reward(pipe) -> int:
            self.scripts.queue(pipe, "reward", reward_keys, reward_args)
            return 1

        coupon = refused = reward = None
        table = self._table(cid)
        offer_id = table.offer_id if table is not None else None
        if spawn.store_id and offer_id and not shadow:
            # The reward rides in the issuance's round trip.
            issued = self.promotions.issue(
                cid,
                offer_id,
                shopper_id,
                channel="game",
                idempotency_key=f"game:{catch_id}",
                store_id=spawn.store_id,
                actor="game",
                source={"catch_id": catch_id, "species": spawn.species},
                prelude=queue_reward,
            )
            if issued.ok:
                coupon = self.promotions.coupons.present(issued.coupon, owner=True)
            else:
                refused = issued.reason
            if issued.prelude:
                reward = issued.prelude[0]
        if reward is None or isinstance(reward, redis.exceptions.NoScriptError):
            reward = self.scripts.call("reward", reward_keys, reward_args)
        elif isinstance(reward, Exception):
            raise reward
        return {
            "points": spawn.points,
            "total_points": float(reward[1]),
            "coupon": coupon,
            "coupon_refused": refused,
        }

    # -- anti-cheat ----------------------------------------------------------------------
    def _strike(self, shopper_id: str, reason: str, evidence: dict[str, Any]) -> dict:
        """Record an incident; count it as a strike unless one of its kind counted within
        the strike cooldown (one incident, one strike, but every incident is kept)."""
        now = self.clock.now()
        record = {"reason": reason, "at": now, "evidence": evidence}
        count, added = self.scripts.call(
            "strike",
            [
                keys.state(shopper_id),
                keys.strikes(shopper_id),
            ],
            [
                repr(now),
                json.dumps({**record, "counted": True}),
                self.settings.strike_cooldown_s,
                self.settings.shadow_s,
                json.dumps({**record, "counted": False}),
                reason,
                self.settings.history_max,
            ],
        )
        level = _level(int(count))
        if added:
            log.warning(
                "game strike",
                extra={
                    "shopper_id": shopper_id,
                    "reason": reason,
                    "strikes": count,
                    "level": level,
                },
            )
            if level == "warning":
                self.notifier.game_event(
                    shopper_id,
                    "game_warning",
                    {
                        "message": "unusual activity was detected; further strikes restrict and "
                        "then suspend this account",
                        "reason": reason,
                    },
                )
        return {"strikes": int(count), "level": level}

    def _suspicious_fixes(self, shopper_id: str, limit: int = 10) -> list[dict[str, Any]]:
        """Return the shopper's latest fixes that the geo engine did not trust (evidence)."""
        fixes = self.engine.recent_fixes(shopper_id)
        bad = [
            {k: v for k, v in f.items() if k not in ("lat", "lon")}  # no coordinates
            for f in fixes
            if f.get("verdict") not in ("ok", None)
        ]
        return bad[-limit:]

    def strikes(self, shopper_id: str) -> dict[str, Any]:
        """Return a shopper's strikes with their evidence and the current restriction."""
        pipe = self.r.pipeline(transaction=False)
        pipe.hmget(keys.state(shopper_id), "strikes", "restricted_until", "suspended")
        pipe.lrange(keys.strikes(shopper_id), 0, -1)
        (count, restricted, suspended), history = pipe.execute()
        now = self.clock.now()
        count = int(count or 0)
        return {
            "shopper_id": shopper_id,
            "strikes": count,
            "level": "suspended" if suspended == "1" else _level(count) if count else "none",
            "shadow_restricted_until": float(restricted)
            if restricted and float(restricted) > now
            else None,
            "history": [json.loads(item) for item in history],
        }

    def clear_strikes(self, shopper_id: str, actor: str) -> dict[str, Any]:
        """Clear a shopper's strikes and restrictions; the history keeps a 'cleared' entry."""
        pipe = self.r.pipeline(transaction=True)
        pipe.hdel(
            keys.state(shopper_id),
            "strikes",
            "last_strike_at",
            "restricted_until",
            "suspended",
            *[f"last_strike_at:{reason}" for reason in STRIKE_REASONS],
        )
        pipe.rpush(
            keys.strikes(shopper_id),
            json.dumps({"reason": "cleared", "at": self.clock.now(), "evidence": {"by": actor}}),
        )
        pipe.execute()
        return self.strikes(shopper_id)

    def status(self, shopper_id: str) -> dict[str, Any]:
        """What the shopper may know: catches today, cooldown, a warning, a suspension."""
        now = self.clock.now()
        st = self.r.hmget(
            keys.state(shopper_id), "day", "day_catches", "last_attempt", "strikes", "suspended"
        )
        day = datetime.fromtimestamp(now, self.tz).strftime("%Y-%m-%d")
        cooldown_until = (float(st[2]) + self.settings.cooldown_s) if st[2] else None
        return {
            "catches_today": int(st[1] or 0) if st[0] == day else 0,
            "daily_cap": self.settings.daily_cap,
            "cooldown_until": cooldown_until if cooldown_until and cooldown_until > now else None,
            # A shadow restriction is, by design, not disclosed; a warning and a suspension are.
            "warned": int(st[3] or 0) >= 1,
            "suspended": st[4] == "1",
        }

    # -- rewards, read back --------------------------------------------------------------
    def collection(self, shopper_id: str) -> dict[str, Any]:
        """Return which species the shopper has caught, and how many, per campaign."""
        raw = self.r.hgetall(keys.collection(shopper_id))
        items = []
        for name, count in sorted(raw.items()):
            cid, _, species = name.partition("|")
            entry = {"campaign_id": cid, "species": species, "count": int(count)}
            table = self._table(cid)
            if table is not None and species in table.species:
                entry.update(
                    name=table.species[species]["name"], rarity=table.species[species]["rarity"]
                )
            items.append(entry)
        return {"items": items, "species": len(items), "catches": sum(i["count"] for i in items)}

    def leaderboard(
        self,
        cid: str,
        *,
        scope: str = "campaign",
        city: str | None = None,
        period: str = "all",
        limit: int = 10,
        shopper_id: str | None = None,
    ) -> dict[str, Any]:
        """Return the top of a campaign's board (or of one city's), and the caller's rank."""
        self.config(cid)
        if scope == "city":
            if not city:
                raise ValidationFailed("a city board needs city=", field="city")
            scope_key = f"city:{city.lower()}"
        else:
            scope_key = "campaign"
        day = period
        if period == "day":
            day = datetime.fromtimestamp(self.clock.now(), self.tz).strftime("%Y-%m-%d")
        key = keys.board(cid, scope_key, day)
        pipe = self.r.pipeline(transaction=False)
        pipe.zrevrange(key, 0, limit - 1, withscores=True)
        pipe.zcard(key)
        if shopper_id:
            pipe.zrevrank(key, shopper_id)
            pipe.zscore(key, shopper_id)
        replies = pipe.execute()
        top, size = replies[0], replies[1]
        # Equal scores share a rank (1, 2, 2, 4): ZREVRANK alone would order ties by id.
        ranks = self._ranks(key, [score for _, score in top])
        entries = [
            {"rank": rank, "shopper_id": member, "points": int(score)}
            for (member, score), rank in zip(top, ranks, strict=True)
        ]
        me = None
        if shopper_id:
            score = replies[3]
            me = {
                "shopper_id": shopper_id,
                "points": int(score or 0),
                "rank": self._ranks(key, [score])[0] if score is not None else None,
            }
        return {
            "campaign_id": cid,
            "scope": scope,
            "city": city,
            "period": period,
            "day": day if period == "day" else None,
            "players": size,
            "entries": entries,
            "me": me,
        }

    def _ranks(self, key: str, scores: list[float]) -> list[int]:
        if not scores:
            return []
        pipe = self.r.pipeline(transaction=False)
        for score in scores:
            pipe.zcount(key, f"({score}", "+inf")
        return [above + 1 for above in pipe.execute()]

    def sprite(self, cid: str, species: str, size: int) -> tuple[bytes, str]:
        """Return a species' sprite PNG and its ETag (drawn once per process, then cached)."""
        from .sprites import sprite_png

        table = self._table(cid)
        if table is None or species not in table.species:
            raise NotFound(
                "no such species in this campaign's game", code="species_not_found", field="species"
            )
        sp = table.species[species]
        key = (species, sp["rarity"], size)
        hit = self._sprites.get(key)
        if hit is None:
            png = sprite_png(species, sp["name"], sp["rarity"], size=size)
            hit = self._sprites[key] = (png, hashlib.sha256(png).hexdigest()[:20])
        return hit

    def erase_location(self, shopper_id: str) -> None:
        """Delete the places the game keeps of a shopper (location consent withdrawn)."""
        self.r.delete(keys.last_catch(shopper_id))
        self._announced.pop(shopper_id, None)

    def erase(self, shopper_id: str) -> None:
        """Remove the shopper's game state, collection, strike history and board entries
        (account erasure)."""
        scored = self.r.smembers(keys.boards(shopper_id))
        pipe = self.r.pipeline(transaction=False)
        for entry in scored:
            cid, rest = entry.split("|", 1)
            city, day = rest.rsplit("|", 1)  # a city's name may hold anything
            for board in _board_keys(cid, city, day):
                pipe.zrem(board, shopper_id)
        # One DEL per key: a Redis Cluster pipeline takes one key per DEL.
        for key in (
            keys.state(shopper_id),
            keys.attempts(shopper_id),
            keys.collection(shopper_id),
            keys.recent(shopper_id),
            keys.strikes(shopper_id),
            keys.last_catch(shopper_id),
            keys.boards(shopper_id),
        ):
            pipe.delete(key)
        pipe.execute()
        self._announced.pop(shopper_id, None)


def _refusal(reply: list) -> DomainError:
    code = reply[1]
    if code == "CONSENT":
        return DomainError(
            "the shopper has not consented to location use",
            code="consent_required",
            field="consent",
            status=403,
        )
    if code == "SUSPENDED":
        return GameRefused(code, "this account is suspended from the game", status=403)
    if code == "COOLDOWN":
        return GameRefused(
            code, "wait a moment before the next throw", details={"until": float(reply[2])}
        )
    messages = {
        "ALREADY_CAUGHT": "you caught this one already",
        "FLED": "this creature ran away from you",
        "DAILY_CAP_REACHED": "that's all the catches for today",
    }
    return GameRefused(
        code,
        messages.get(code, code),
        field="spawn_id" if code in ("ALREADY_CAUGHT", "FLED") else None,
    )


def _board_keys(cid: str, city: str, day: str) -> list[str]:
    """Return the boards one catch scores on: campaign and city, overall and of the day."""
    scope = f"city:{city}"
    return [
        keys.board(cid, "campaign", "all"),
        keys.board(cid, "campaign", day),
        keys.board(cid, scope, "all"),
        keys.board(cid, scope, day),
    ]


def _spawn_evidence(spawn: Spawn, ref: str) -> dict[str, Any]:
    """A spawn as strike evidence: its opaque reference, kind and rarity, not its place."""
    return {"ref": ref, "kind": "store" if spawn.store_id else "wild", "rarity": spawn.rarity}


def _level(count: int) -> str:
    return {0: "none", 1: "warning", 2: "shadow_restricted"}.get(count, "suspended")


def _fix_dict(fix: Fix) -> dict[str, Any]:
    """A fix as strike evidence: what the phone claimed, but not where (no coordinates)."""
    return {
        "accuracy_m": fix.accuracy_m,
        "recorded_at": fix.recorded_at,
        "speed_mps": fix.speed_mps,
        "mock": fix.mock,
    }


__all__ = ["Game", "GameNotifier", "GameRefused", "GameSettings", "roll_for"]
