"""Shared setup for the game tests: a live campaign with a game, stores, shoppers with fixes."""

from __future__ import annotations

from typing import Any

from game import Game, GameSettings, roll_for
from game.models import CATCH_RATE, FLEE_RATE, GameConfigIn
from game.spawns import Spawn
from geo.engine import EngineSettings, Fix, LocationEngine
from geo.geometry import LocalFrame, fast_distance_m

from .promo_helpers import SHANGHAI, add_stores, live_campaign, make_promotions

BEIJING = (39.9042, 116.4074)
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# 10:00-22:00 every day in Shanghai; T0 is 04:26:40 there, a closed time.
DAY_HOURS = {"tz": "Asia/Shanghai", "weekly": {d: [["10:00", "22:00"]] for d in DAYS}}
# From T0 (04:26:40 Shanghai, Friday 2026-05-29) to noon and to 23:30 the same day there.
ALL = 10_000  # visible() answers the nearest 50 by default; the tests look at all
TO_NOON = 7 * 3600 + 33 * 60 + 20
TO_LATE = TO_NOON + 11 * 3600 + 30 * 60
NEXT_SHANGHAI_MIDNIGHT = 1_780_070_400.0

SPECIES = [
    {"id": "dumpling", "name": "Dumpling", "rarity": "common", "weight": 6},
    {"id": "lantern", "name": "Lantern", "rarity": "common", "weight": 3},
    {"id": "koi", "name": "Koi", "rarity": "rare", "weight": 2},
    {"id": "qilin", "name": "Qilin", "rarity": "epic", "weight": 1},
    {"id": "dragon", "name": "Dragon", "rarity": "legendary", "weight": 1, "points": 777},
]


def game_config(**overrides: Any) -> GameConfigIn:
    """Return a dense game (many creatures near any point) with a fixed seed."""
    spec = {
        "species": SPECIES,
        "density_per_cell": 20,
        "store_density": 6,
        "store_rarity_boost": 5,
        "seed": "test-seed",
    }
    spec.update(overrides)
    return GameConfigIn(**spec)


def offset(lat: float, lon: float, east_m: float, north_m: float) -> tuple[float, float]:
    """Return the point east_m/north_m metres away."""
    return LocalFrame(lat, lon).to_latlon(east_m, north_m)


class Notes:
    """A GameNotifier that remembers what it was told."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict]] = []

    def game_event(self, shopper_id: str, name: str, payload: dict[str, Any]) -> None:
        self.sent.append((shopper_id, name, payload))

    def named(self, name: str, shopper_id: str | None = None) -> list[dict]:
        return [p for s, n, p in self.sent if n == name and shopper_id in (None, s)]


def outcome_of(spawn: Spawn, shopper_id: str, attempt: int = 1) -> str:
    """Return what the catch script will decide for this attempt (from the audit roll)."""
    roll, flee = roll_for(spawn.id, shopper_id, attempt)
    if roll < CATCH_RATE[spawn.rarity]:
        return "caught"
    return "fled" if flee < FLEE_RATE[spawn.rarity] else "missed"


def shopper_for(spawn: Spawn, *outcomes: str, prefix: str = "p") -> str:
    """Return a shopper id whose attempts 1, 2, ... at the spawn end as the outcomes say."""
    for n in range(100_000):
        candidate = f"{prefix}{n}"
        if all(outcome_of(spawn, candidate, k) == o for k, o in enumerate(outcomes, 1)):
            return candidate
    raise AssertionError(f"no shopper gets {outcomes} at {spawn.id}")


class World:
    """Stores, a live campaign with an offer and a game, an engine and a game on one Redis."""

    def __init__(
        self,
        r,
        clock,
        *,
        engine_settings: EngineSettings | None = None,
        settings: GameSettings | None = None,
        stores: list[dict] | None = None,
        **config: Any,
    ) -> None:
        self.r = r
        self.clock = clock
        self.promos = make_promotions(r, clock)
        self.catalog = self.promos.campaigns.catalog
        add_stores(self.catalog)  # acme-0 at SHANGHAI, acme-1/-2 1.1 and 2.2 km north
        for store in stores or []:
            self.catalog.create(store)
        self.engine = LocationEngine(r, self.catalog, clock, engine_settings or EngineSettings())
        self.notes = Notes()
        self.cid, self.oid = live_campaign(self.promos)
        self.game = self.new_game(settings)
        self.config = self.game.configure(self.cid, game_config(offer_id=self.oid, **config))

    def new_game(self, settings: GameSettings | None = None, r=None) -> Game:
        """Return another Game on the same Redis (as another process, or after a restart)."""
        return Game(
            r or self.r,
            self.clock,
            self.promos,
            self.engine,
            settings or GameSettings(),
            notifier=self.notes,
        )

    def join(self, shopper_id: str, lat: float = SHANGHAI[0], lon: float = SHANGHAI[1]) -> str:
        """Give the shopper consent and a trusted fix at a point."""
        self.engine.set_consent(shopper_id, True)
        self.place(shopper_id, lat, lon)
        return shopper_id

    def place(self, shopper_id: str, lat: float, lon: float, **kw: Any) -> None:
        """Record a fix now through the engine; it must become the shopper's anchor."""
        [result] = self.engine.record_fixes(shopper_id, [self.fix(lat, lon, **kw)])
        assert result.verdict == "ok" and not result.ignored, result

    def fix(
        self,
        lat: float,
        lon: float,
        *,
        age: float = 0.0,
        acc: float = 5.0,
        speed: float | None = 0.0,
        mock: bool = False,
    ) -> Fix:
        """Return a fix recorded `age` seconds ago."""
        return Fix(lat, lon, acc, self.clock.now() - age, speed, mock)

    def near(
        self,
        shopper_id: str,
        *,
        within: float = 70.0,
        rarity: str | None = None,
        store: bool | None = None,
        game: Game | None = None,
    ) -> list[Spawn]:
        """Return the spawns the shopper sees within `within` metres, nearest first."""
        game = game or self.game
        views = game.visible(shopper_id, limit=ALL)["spawns"]
        found = [
            game.spawn(v["id"])
            for v in views
            if v["distance_m"] <= within
            and (rarity is None or v["rarity"] == rarity)
            and (store is None or (v["store_id"] is not None) == store)
        ]
        assert found, f"no {rarity or ''} spawn within {within} m"
        return found

    def throw(
        self, shopper_id: str, spawn: Spawn, game: Game | None = None, **kw: Any
    ) -> dict[str, Any]:
        """Throw at a spawn from a fix right on it."""
        return (game or self.game).catch(shopper_id, spawn.id, self.fix(spawn.lat, spawn.lon, **kw))


def catchable(world: World, shopper_id: str, count: int, **near: Any) -> list[Spawn]:
    """Return `count` spawns near the shopper that their first throw catches."""
    found = [s for s in world.near(shopper_id, **near) if outcome_of(s, shopper_id) == "caught"]
    assert len(found) >= count, f"only {len(found)} catchable spawns"
    return found[:count]


def distance(a: Spawn, lat: float, lon: float) -> float:
    """Return the metres from a spawn to a point."""
    return fast_distance_m(a.lat, a.lon, lat, lon)
