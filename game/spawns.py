"""Deterministic spawns: every process computes the same creatures from (cell, slot, seed).

Nothing about a spawn is stored. Its id names where it came from — `w:<campaign>:<cell>:
<slot>:<n>` for a wild spawn, `s:<campaign>:<store>:<slot>:<n>` for one inside a store's fence
— and any process regenerates it from the campaign's seed to check a catch.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from geo.geometry import LocalFrame, bearing_deg, fast_distance_m

from . import cells
from .models import AR_ANCHOR_M, AR_SCALE, DEFAULT_POINTS, RARITIES

SLOT_S = 900  # a new generation of spawns every 15 minutes
LIFETIMES_S = (900, 1800, 3600)  # each lives 15, 30 or 60 minutes
LIFETIME_WEIGHTS = (0.5, 0.3, 0.2)
MAX_SLOTS_BACK = LIFETIMES_S[-1] // SLOT_S  # older generations are all gone
CACHE_SIZE = 20_000
AR = {
    rarity: {"anchor_size_m": AR_ANCHOR_M[rarity], "suggested_scale": AR_SCALE[rarity]}
    for rarity in RARITIES
}


@dataclass(frozen=True, slots=True)
class Spawn:
    """One creature on the map."""

    id: str
    campaign_id: str
    species: str
    name: str
    rarity: str
    points: int
    lat: float
    lon: float
    born_at: float
    expires_at: float
    store_id: str | None = None

    def alive_at(self, t: float) -> bool:
        """Tell whether the creature is on the map at time t."""
        return self.born_at <= t < self.expires_at

    def view(self, lat: float, lon: float) -> dict[str, Any]:
        """Return the spawn for a shopper at (lat, lon): distance, bearing and AR data."""
        return self.view_at(
            fast_distance_m(lat, lon, self.lat, self.lon), bearing_deg(lat, lon, self.lat, self.lon)
        )

    def view_at(self, distance_m: float, bearing: float) -> dict[str, Any]:
        """Return the spawn's view with a distance and bearing the caller worked out."""
        return {
            "id": self.id,
            "campaign_id": self.campaign_id,
            "species": self.species,
            "name": self.name,
            "rarity": self.rarity,
            "points": self.points,
            "lat": round(self.lat, 6),
            "lon": round(self.lon, 6),
            "expires_at": self.expires_at,
            "store_id": self.store_id,
            "distance_m": round(distance_m, 1),
            "bearing_deg": round(bearing, 1),
            "ar": AR[self.rarity],
        }


class SpawnTable:
    """A campaign's species table with the weights of wild and of store spawns."""

    def __init__(self, cid: str, config: dict[str, Any]) -> None:
        self.cid = cid
        self.seed = config["seed"]
        self.offer_id = config.get("offer_id")
        self.density = config["density_per_cell"]
        self.store_density = config["store_density"]
        self.species = {s["id"]: s for s in config["species"]}
        boost = config["store_rarity_boost"]
        wild = [s for s in config["species"] if s["rarity"] != "legendary"]
        self._wild = wild
        self._wild_w = [s["weight"] for s in wild]
        self._store = list(config["species"])
        self._store_w = [
            s["weight"] * (1 if s["rarity"] == "common" else boost) for s in self._store
        ]
        self._cache: OrderedDict[tuple, list[Spawn]] = OrderedDict()

    def _rng(self, *parts: Any) -> random.Random:
        text = "|".join(str(p) for p in (self.seed, self.cid, *parts))
        return random.Random(int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big"))

    def _cached(self, key: tuple, build) -> list[Spawn]:
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = build()
            if len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return found

    @staticmethod
    def _count(rng: random.Random, density: float) -> int:
        whole = math.floor(density)
        return whole + (1 if rng.random() < density - whole else 0)

    def _make(
        self,
        rng: random.Random,
        ident: str,
        sp: dict,
        lat: float,
        lon: float,
        slot: int,
        store_id: str | None,
    ) -> Spawn:
        born = slot * SLOT_S
        life = rng.choices(LIFETIMES_S, LIFETIME_WEIGHTS)[0]
        points = sp["points"] if sp.get("points") is not None else DEFAULT_POINTS[sp["rarity"]]
        return Spawn(
            ident,
            self.cid,
            sp["id"],
            sp["name"],
            sp["rarity"],
            points,
            lat,
            lon,
            float(born),
            float(born + life),
            store_id,
        )

    def wild(self, cell: str, slot: int) -> list[Spawn]:
        """Return the wild spawns born in one cell at one slot."""
        return self._cached(("w", cell, slot), lambda: self._wild_spawns(cell, slot))

    def _wild_spawns(self, cell: str, slot: int) -> list[Spawn]:
        if not self._wild or self.density <= 0:
            return []
        rng = self._rng("w", cell, slot)
        lat_lo, lon_lo, lat_hi, lon_hi = cells.bounds(cell)
        out = []
        for n in range(self._count(rng, self.density)):
            sp = rng.choices(self._wild, self._wild_w)[0]
            lat = rng.uniform(lat_lo, lat_hi)
            lon = rng.uniform(lon_lo, lon_hi)
            out.append(self._make(rng, f"w:{self.cid}:{cell}:{slot}:{n}", sp, lat, lon, slot, None))
        return out

    def in_store(self, store_id: str, fence, slot: int) -> list[Spawn]:
        """Return the extra spawns born inside one store's fence at one slot."""
        return self._cached(
            ("s", store_id, slot, fence), lambda: self._store_spawns(store_id, fence, slot)
        )

    def _store_spawns(self, store_id: str, fence, slot: int) -> list[Spawn]:
        if self.store_density <= 0:
            return []
        rng = self._rng("s", store_id, slot)
        frame = LocalFrame(fence.lat, fence.lon)
        reach = max(fence.extent_m * 0.8, 1.0)
        out = []
        for _ in range(self._count(rng, self.store_density)):
            sp = rng.choices(self._store, self._store_w)[0]
            spot = None
            for _ in range(20):  # a point inside the fence (polygons: rejection sampling)
                r = reach * math.sqrt(rng.random())
                a = rng.uniform(0, 2 * math.pi)
                y, x = frame.to_latlon(r * math.cos(a), r * math.sin(a))
                if fence.contains(y, x):
                    spot = (y, x)
                    break
            if spot is None:
                # The centre of a concave fence (a U-shaped mall) may lie outside it: no spawn.
                continue
            out.append(
                self._make(
                    rng, f"s:{self.cid}:{store_id}:{slot}:{len(out)}", sp, *spot, slot, store_id
                )
            )
        return out


def slots_alive(t: float) -> list[int]:
    """Return the slots whose spawns may still be alive at time t."""
    now_slot = int(t // SLOT_S)
    return [now_slot - k for k in range(MAX_SLOTS_BACK)]


def parse_id(spawn_id: str) -> tuple[str, str, str, int, int] | None:
    """Split a spawn id into (kind, campaign, cell or store, slot, n); None if malformed."""
    parts = spawn_id.split(":")
    if len(parts) != 5 or parts[0] not in ("w", "s"):
        return None
    kind, cid, where, slot, n = parts
    if not (cid.isdigit() and slot.isdigit() and n.isdigit()) or len(n) > 3 or not where:
        return None
    return kind, cid, where, int(slot), int(n)


__all__ = ["LIFETIMES_S", "RARITIES", "SLOT_S", "Spawn", "SpawnTable", "parse_id", "slots_alive"]
