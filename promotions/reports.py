"""The ledger (append-only, per campaign) and analytics: funnel, hourly rows, CSV, heatmap."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import redis

from core.csvfile import to_csv
from core.errors import ValidationFailed

from . import keys
from .campaigns import Campaigns

STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
METRICS = ("enter", "dwell", "issued", "value", "redeemed", "discount", "voided", "expired")
GROUPS = ("campaign", "offer", "store", "hour", "channel")
CSV_COLUMNS = (
    "hour",
    "offer_id",
    "store_id",
    "channel",
    "visits_enter",
    "visits_dwell",
    "issued",
    "value_fen",
    "redeemed",
    "discount_fen",
    "voided",
    "expired",
    "redemption_rate",
)


class Reports:
    """Read a campaign's ledger and statistics."""

    def __init__(self, r: redis.Redis, campaigns: Campaigns) -> None:
        self.r = r
        self.campaigns = campaigns

    def ledger(
        self, cid: str, *, after: str | None = None, limit: int = 100, kind: str | None = None
    ) -> dict[str, Any]:
        """Page through a campaign's ledger, oldest first, after a stream id."""
        self.campaigns.get(cid)
        if after is not None and not STREAM_ID.match(after):
            raise ValidationFailed(
                "after must be an entry id from this ledger", code="invalid_cursor", field="after"
            )
        start = f"({after}" if after else "-"
        items: list[dict[str, Any]] = []
        last = None
        while len(items) < limit:
            rows = self.r.xrange(keys.ledger(cid), start, "+", count=limit)
            for entry_id, fields in rows:
                last = entry_id
                if kind and fields.get("type") != kind:
                    continue
                items.append(_ledger_entry(entry_id, fields))
                if len(items) == limit:
                    break
            if len(rows) < limit:
                last = None if len(items) < limit else last
                break
            start = f"({rows[-1][0]}"
        more = last is not None and bool(self.r.xrange(keys.ledger(cid), f"({last}", "+", count=1))
        return {"items": items, "next_cursor": last if more else None}

    def _rows(self, cid: str) -> list[dict[str, Any]]:
        """Return the statistics as rows keyed by (hour, offer, store, channel)."""
        cells: dict[tuple[str, str, str, str], dict[str, int]] = defaultdict(
            lambda: dict.fromkeys(METRICS, 0)
        )
        for name, value in self.r.hscan_iter(keys.stats(cid), count=1_000):
            parts = name.split("|")
            if len(parts) != 5 or parts[0] not in METRICS:
                continue  # refusal counters and anything unknown
            metric, oid, store, hour, channel = parts
            cells[(hour, oid, store, channel)][metric] += int(value)
        rows = []
        for (hour, oid, store, channel), m in sorted(cells.items()):
            rows.append(
                {
                    "hour": hour,
                    "offer_id": oid or None,
                    "store_id": store or None,
                    "channel": channel or None,
                    **m,
                }
            )
        return rows

    def analytics(self, cid: str, *, group: str = "campaign") -> dict[str, Any]:
        """Return the funnel and totals grouped by campaign, offer, store, hour or channel."""
        if group not in GROUPS:
            raise ValidationFailed(f"group is one of {', '.join(GROUPS)}", field="group")
        campaign = self.campaigns.get(cid)
        rows = self._rows(cid)
        buckets: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(METRICS, 0))
        for row in rows:
            key = (
                "all"
                if group == "campaign"
                else (row[{"offer": "offer_id", "store": "store_id"}.get(group, group)] or "")
            )
            for metric in METRICS:
                buckets[key][metric] += row[metric]
        groups = [{group: key, **_with_rates(m)} for key, m in sorted(buckets.items())]
        totals = dict.fromkeys(METRICS, 0)
        for row in rows:
            for metric in METRICS:
                totals[metric] += row[metric]
        visits = totals["enter"] + totals["dwell"]
        from_visits = sum(r["issued"] for r in rows if r["channel"] == "visit")
        refusals: dict[str, int] = defaultdict(int)
        for name, value in self.r.hscan_iter(keys.stats(cid), match="refused:*", count=1_000):
            refusals[name.split("|", 1)[0].removeprefix("refused:")] += int(value)
        return {
            "campaign_id": cid,
            "status": campaign["status"],
            "group": group,
            "funnel": {
                "visits": visits,
                "visitors": self.r.pfcount(keys.visitors(cid)),
                "coupons_from_visits": from_visits,
                "coupons": totals["issued"] - totals["voided"],
                "redeemed": totals["redeemed"],
                "visit_to_coupon": _rate(from_visits, visits),
                "coupon_to_redemption": _rate(
                    totals["redeemed"], totals["issued"] - totals["voided"]
                ),
            },
            "totals": _with_rates(totals),
            "refusals": dict(sorted(refusals.items())),
            "groups": groups,
        }

    def csv(self, cid: str) -> str:
        """Return the hourly statistics as CSV, one row per hour, offer, store and channel."""
        self.campaigns.get(cid)
        rows: list[list[Any]] = [list(CSV_COLUMNS)]
        for row in self._rows(cid):
            rows.append(
                [
                    row["hour"],
                    row["offer_id"] or "",
                    row["store_id"] or "",
                    row["channel"] or "",
                    row["enter"],
                    row["dwell"],
                    row["issued"],
                    row["value"],
                    row["redeemed"],
                    row["discount"],
                    row["voided"],
                    row["expired"],
                    _rate(row["redeemed"], row["issued"] - row["voided"]) if row["issued"] else "",
                ]
            )
        return to_csv(rows)

    def heat_points(
        self, cid: str
    ) -> tuple[
        list[tuple[float, float, str, float]], tuple[float, float, float, float] | None, str
    ]:
        """Return (lat, lon, kind, weight) per store for issued and redeemed, the area, a title."""
        campaign = self.campaigns.get(cid)
        per_store: dict[tuple[str, str], int] = defaultdict(int)
        for row in self._rows(cid):
            if row["store_id"]:
                per_store[(row["store_id"], "issued")] += row["issued"] - row["voided"]
                per_store[(row["store_id"], "redeemed")] += row["redeemed"]
        points = []
        for (sid, kind), count in sorted(per_store.items()):
            store = self.campaigns.store(sid)
            if store is not None and count > 0:
                points.append((store["lat"], store["lon"], kind, float(count)))
        area = [self.campaigns.store(s) for s in campaign["targets"]["stores"]]
        coords = [(s["lat"], s["lon"]) for s in area if s] + [(p[0], p[1]) for p in points]
        bbox = None
        if len(coords) > 1:
            lats, lons = [c[0] for c in coords], [c[1] for c in coords]
            pad_lat = max((max(lats) - min(lats)) * 0.1, 0.002)
            pad_lon = max((max(lons) - min(lons)) * 0.1, 0.002)
            bbox = (
                min(lats) - pad_lat,
                min(lons) - pad_lon,
                max(lats) + pad_lat,
                max(lons) + pad_lon,
            )
        return points, bbox, f"{campaign['name']}: coupons issued and redeemed"


def _ledger_entry(entry_id: str, fields: dict[str, str]) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": entry_id}
    for name, value in fields.items():
        if name == "at":
            entry[name] = float(value)
        elif name.endswith("_fen"):
            entry[name] = int(value)
        else:
            entry[name] = value if value != "" else None
    return entry


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole > 0 else None


def _with_rates(m: dict[str, int]) -> dict[str, Any]:
    return {
        "visits_enter": m["enter"],
        "visits_dwell": m["dwell"],
        "issued": m["issued"],
        "value_fen": m["value"],
        "redeemed": m["redeemed"],
        "discount_fen": m["discount"],
        "voided": m["voided"],
        "expired": m["expired"],
        "redemption_rate": _rate(m["redeemed"], m["issued"] - m["voided"]),
    }
