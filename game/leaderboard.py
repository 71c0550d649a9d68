"""The campaigns' boards: a catch's points, once per catch, on four boards (the campaign's and
its city's, overall and of the day), and the boards read back with shared ranks."""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime
from typing import Any

from core.errors import ValidationFailed

from . import keys
from .scripts import RewardCall

DAY_BOARD_TTL_S = 40 * 86_400
REWARDED_TTL_S = 3 * 3600  # a catch (and its retry) happens while the spawn lives


def board_keys(cid: str, city: str, day: str) -> list[str]:
    """Return the boards one catch scores on: campaign and city, overall and of the day."""
    scope = f"city:{city}"
    return [
        keys.board(cid, "campaign", "all"),
        keys.board(cid, "campaign", day),
        keys.board(cid, scope, "all"),
        keys.board(cid, scope, day),
    ]


class Days:
    """The local day of a time in the game's timezone, remembered per minute (a day starts on
    a whole minute in every timezone)."""

    def __init__(self, tz) -> None:
        self.tz = tz
        self._memo: OrderedDict[int, str] = OrderedDict()

    def __call__(self, t: float) -> str:
        minute = int(t // 60)
        day = self._memo.get(minute)
        if day is None:
            day = self._memo[minute] = datetime.fromtimestamp(t, self.tz).strftime("%Y-%m-%d")
            if len(self._memo) > 64:
                self._memo.popitem(last=False)
        return day


def reward_call(
    cid: str, born_hour: int, city: str, day: str, catch_id: str, shopper_id: str, points: int
) -> RewardCall:
    """Return the REWARD script's call for one catch (all keys on the campaign's slot)."""
    all_, day_board, city_all, city_day = board_keys(cid, city.lower(), day)
    return RewardCall(
        rewarded_key=keys.rewarded(cid, born_hour),
        campaign_all_key=all_,
        campaign_day_key=day_board,
        city_all_key=city_all,
        city_day_key=city_day,
        catch_id=catch_id,
        shopper=shopper_id,
        points=points,
        day_board_ttl_s=DAY_BOARD_TTL_S,
        rewarded_ttl_s=REWARDED_TTL_S,
    )


class Boards:
    """The boards read back."""

    def __init__(self, r, clock, days: Days, config) -> None:
        self.r = r
        self.clock = clock
        self.days = days
        self.config = config  # cid -> configuration (NotFound without a game)

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
            day = self.days(self.clock.now())
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
