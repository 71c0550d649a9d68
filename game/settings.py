"""What the app hands the game: its tunables and where its events go."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


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
