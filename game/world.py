"""Where things are: each campaign's spawn table, the stores and their opening hours, the
live spawns around a point, one spawn regenerated from its id, a spawn's city.

Everything here is derived from the configuration and the catalog, so each process caches
it (spawns are deterministic per slot): the caches are checked against `game:version` and
the promotions/catalog objects at most every CACHE_TTL_S.
"""

from __future__ import annotations

import json
import math
import time
from collections import OrderedDict
from typing import Any

from core.errors import NotFound
from geo import keys as geo_keys
from geo.geometry import fast_distance_m
from geo.stores import entry_from_record

from . import cells, keys
from .errors import GameRefused
from .spawns import SLOT_S, Spawn, SpawnTable, parse_id, slots_alive

CACHE_TTL_S = 1.0
NEARBY_TTL_S = 30.0
# Store spawns lie within 0.8 x the fence's extent of its anchor; fences reach at most a few
# hundred metres (larger ones are malls, whose spawns still fall inside this margin).
STORE_REACH_M = 250.0
CANDIDATES_TTL_S = 30.0
CITY_SEARCH_M = 5_000.0
RARE = ("rare", "epic", "legendary")


class World:
    """The spawn tables and store lookups of one process (caches over Redis)."""

    def __init__(self, r, clock, promotions) -> None:
        self.r = r
        self.clock = clock
        self.promotions = promotions
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

    def invalidate(self) -> None:
        """Forget the tables and live campaigns (this process changed a configuration)."""
        self._tables.clear()
        self._live = (0.0, [])

    def config(self, cid: str) -> dict[str, Any]:
        """Return a campaign's game configuration (NotFound if it has none)."""
        raw = self.r.get(keys.config(cid))
        if raw is None:
            raise NotFound("this campaign has no game", code="game_not_found", field="campaign_id")
        return json.loads(raw)

    def table(self, cid: str) -> SpawnTable | None:
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

    def store(self, store_id: str):
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

    def is_open(self, store_id: str, now: float) -> bool:
        """Tell whether a store's fence is active (open, or always active) at a time."""
        found = self.store(store_id)
        return found is not None and found[1].active_at(now)

    def _store_spawns(self, table: SpawnTable, store_id: str, slot: int) -> list[Spawn]:
        """Return a store's spawns of one slot, if the campaign targets it and it was open."""
        found = self.store(store_id)
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

    def city_of(self, spawn: Spawn) -> str:
        if spawn.store_id:
            found = self.store(spawn.store_id)
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
            found = self.store(hits[0])
            if found is not None:
                city = found[0]["city"]
        self._cities[cell] = (now, city)
        if len(self._cities) > 50_000:
            self._cities.popitem(last=False)
        return city

    def around(
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
        tables = tuple(self.table(cid) for cid in cids)
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
                            open_now = is_open[store] = self.is_open(store, now)
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
        table = self.table(cid)
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
        table = self.table(cid)
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
        if kind == "s" and spawn.born_at <= now and not self.is_open(where, now):
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
