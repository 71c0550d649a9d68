"""Anti-cheat moderation: incidents with their evidence, strikes, restrictions, clearing."""

from __future__ import annotations

import json
import logging
from typing import Any

from . import keys
from .scripts import StrikeCall

log = logging.getLogger("game.engine")  # the name operators' log filters know
STRIKE_REASONS = ("spoofed_location", "spoofed_locations", "impossible_travel", "inhuman_rate")


def level(count: int) -> str:
    """Return the moderation level of a strike count."""
    return {0: "none", 1: "warning", 2: "shadow_restricted"}.get(count, "suspended")


class Strikes:
    """One process's view of the shoppers' strikes (all state in Redis)."""

    def __init__(self, r, clock, scripts, settings, notifier, engine) -> None:
        self.r = r
        self.clock = clock
        self.scripts = scripts
        self.settings = settings
        self.notifier = notifier
        self.engine = engine

    def record(self, shopper_id: str, reason: str, evidence: dict[str, Any]) -> dict:
        """Record an incident; count it as a strike unless one of its kind counted within
        the strike cooldown (one incident, one strike, but every incident is kept)."""
        s = self.settings
        now = self.clock.now()
        record = {"reason": reason, "at": now, "evidence": evidence}
        count, added = StrikeCall(
            state_key=keys.state(shopper_id),
            strikes_key=keys.strikes(shopper_id),
            now=repr(now),
            counted_record=json.dumps({**record, "counted": True}),
            cooldown_s=s.strike_cooldown_s,
            shadow_s=s.shadow_s,
            uncounted_record=json.dumps({**record, "counted": False}),
            reason=reason,
            history_max=s.history_max,
        ).call(self.scripts)
        lvl = level(int(count))
        if added:
            log.warning(
                "game strike",
                extra={"shopper_id": shopper_id, "reason": reason, "strikes": count, "level": lvl},
            )
            if lvl == "warning":
                self.notifier.game_event(
                    shopper_id,
                    "game_warning",
                    {
                        "message": "unusual activity was detected; further strikes restrict and "
                        "then suspend this account",
                        "reason": reason,
                    },
                )
        return {"strikes": int(count), "level": lvl}

    def suspicious_fixes(self, shopper_id: str, limit: int = 10) -> list[dict[str, Any]]:
        """Return the shopper's latest fixes that the geo engine did not trust (evidence)."""
        fixes = self.engine.recent_fixes(shopper_id)
        bad = [
            {k: v for k, v in f.items() if k not in ("lat", "lon")}  # no coordinates
            for f in fixes
            if f.get("verdict") not in ("ok", None)
        ]
        return bad[-limit:]

    def of(self, shopper_id: str) -> dict[str, Any]:
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
            "level": "suspended" if suspended == "1" else level(count) if count else "none",
            "shadow_restricted_until": float(restricted)
            if restricted and float(restricted) > now
            else None,
            "history": [json.loads(item) for item in history],
        }

    def clear(self, shopper_id: str, actor: str) -> dict[str, Any]:
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
        return self.of(shopper_id)
