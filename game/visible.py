"""The spawn list: the nearest live spawns around a shopper's last trusted fix, and the
announcement of rare ones in range on the shopper's socket."""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

from geo.motion import Point

from .errors import GameRefused, suspended
from .scripts import ViewStateCall
from .world import RARE

VISIBLE_LIMIT = 50
ANNOUNCE_MAX = 3  # rare_spawn events per query at most


class SpawnList:
    """Answers "what is around me" for one process (the world's caches, one read per query)."""

    def __init__(self, world, clock, scripts, settings, notifier, spawn_ref) -> None:
        self.world = world
        self.clock = clock
        self.scripts = scripts
        self.settings = settings
        self.notifier = notifier
        self.spawn_ref = spawn_ref
        self._announced: OrderedDict[str, set[str]] = OrderedDict()

    def visible(
        self, shopper_id: str, radius_m: float | None = None, limit: int = VISIBLE_LIMIT
    ) -> dict[str, Any]:
        """Return the nearest spawns around the shopper's last trusted fix (at most limit)."""
        radius = radius_m or self.settings.visible_radius_m
        now = self.clock.now()
        anchor, suspended_flag, restricted, tried = ViewStateCall.for_shopper(shopper_id).call(
            self.scripts
        )
        if suspended_flag == "1":
            raise suspended()
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
        found = self.world.around(lat, lon, radius, now, common_only=shadow)
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

    def forget(self, shopper_id: str) -> None:
        """Forget what was announced to the shopper (erasure)."""
        self._announced.pop(shopper_id, None)

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
