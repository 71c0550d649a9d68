"""The ledger (append-only, per campaign) and analytics: funnel, groups (campaign, day, offer,
store, hour, channel), CSV, heatmap points, cap/budget usage, and the live funnel's snapshot."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import redis

from core.csvfile import to_csv
from core.errors import ValidationFailed

from . import keys
from .campaigns import Campaigns, local_day_hour

STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
METRICS = ("enter", "dwell", "issued", "value", "redeemed", "discount", "voided", "expired")
GROUPS = ("campaign", "day", "offer", "store", "hour", "channel")
# The column of a statistics row each group reads (a day is the first 10 characters of the
# campaign-local hour, 'YYYY-MM-DD').
GROUP_COLUMN = {"offer": "offer_id", "store": "store_id", "hour": "hour", "channel": "channel"}
# The columns of a grouped CSV export, after the group's own column (and its name).
GROUP_CSV_COLUMNS = (
    "visits",
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

# The columns of a ledger export: every field an entry type writes (scripts.py), then `extra`
# (JSON of any other field, so nothing is dropped).
LEDGER_CSV_COLUMNS = (
    "id",
    "type",
    "at",
    "at_utc",
    "coupon",
    "offer",
    "shopper",
    "store",
    "channel",
    "actor",
    "value_fen",
    "basket_fen",
    "discount_fen",
    "order_ref",
    "reason",
    "from",
    "to",
    "source",
    "idempotency_key",
    "extra",
)

# The field of a campaign's statistics hash that every counting script bumps (scripts.py).
STATS_VERSION = "v"
# Fields read per HSCAN round trip when folding the statistics.
SCAN_BATCH = 2_000


class _Aggregate:
    """The statistics folded per campaign, day and store in one pass."""

    def __init__(self) -> None:
        self.totals: dict[str, int] = dict.fromkeys(METRICS, 0)
        self.days: dict[str, dict[str, int]] = {}
        self.stores: dict[str, dict[str, int]] = {}
        self.from_visits = 0
        self.refusals: dict[str, int] = defaultdict(int)


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

    def ledger_csv(self, cid: str, *, batch: int = 1_000) -> tuple[int, Iterator[list[Any]]]:
        """Return how many entries the ledger holds and its CSV rows (the header first, then
        every entry oldest first, read in pages of `batch` through ledger())."""
        self.campaigns.get(cid)
        size = self.r.xlen(keys.ledger(cid))

        def rows() -> Iterator[list[Any]]:
            yield list(LEDGER_CSV_COLUMNS)
            after = None
            while True:
                page = self.ledger(cid, after=after, limit=batch)
                for entry in page["items"]:
                    yield _ledger_csv_row(entry)
                after = page["next_cursor"]
                if after is None:
                    return

        return size, rows()

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

    def _grouped(self, cid: str, rows: list[dict[str, Any]], group: str) -> list[dict[str, Any]]:
        """Sum the rows by one group; store and offer groups carry their name."""
        buckets: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(METRICS, 0))
        for row in rows:
            if group == "campaign":
                key = "all"
            elif group == "day":
                key = row["hour"][:10]
            else:
                key = row[GROUP_COLUMN[group]] or ""
            for metric in METRICS:
                buckets[key][metric] += row[metric]
        groups = []
        for key, m in sorted(buckets.items()):
            item: dict[str, Any] = {group: key}
            if group == "store":
                store = self.campaigns.store(key) if key else None
                item["name"] = store["name"] if store else None
            item.update(_with_rates(m))
            groups.append(item)
        if group == "offer":
            names = self._offer_names(cid)
            for item in groups:
                item["name"] = names.get(item["offer"])
        return groups

    def _offer_names(self, cid: str) -> dict[str, str]:
        return {o["id"]: o["name"] for o in self.campaigns.list_offers(cid)}

    def analytics(self, cid: str, *, group: str = "campaign") -> dict[str, Any]:
        """Return the funnel and totals grouped by campaign, day, offer, store, hour or channel."""
        if group not in GROUPS:
            raise ValidationFailed(f"group is one of {', '.join(GROUPS)}", field="group")
        campaign = self.campaigns.get(cid)
        rows = self._rows(cid)
        return {
            "campaign_id": cid,
            "status": campaign["status"],
            "group": group,
            **self._funnel(cid, rows),
            "groups": self._grouped(cid, rows, group),
        }

    def _funnel(self, cid: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """Return the funnel, the totals and the refusals of a campaign's rows."""
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
        }

    def csv(self, cid: str, group: str | None = None) -> str:
        """Return the statistics as CSV: one row per hour, offer, store and channel, or (with a
        group) one row per group as analytics() shows it."""
        if group is not None and group not in GROUPS:
            raise ValidationFailed(f"group is one of {', '.join(GROUPS)}", field="group")
        self.campaigns.get(cid)
        if group is not None:
            return self._grouped_csv(cid, group)
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

    def _grouped_csv(self, cid: str, group: str) -> str:
        named = group in ("store", "offer")
        head = [GROUP_COLUMN.get(group, group)] + (["name"] if named else [])
        rows: list[list[Any]] = [head + list(GROUP_CSV_COLUMNS)]
        for item in self._grouped(cid, self._rows(cid), group):
            visits = item["visits_enter"] + item["visits_dwell"]
            cells = [item[group]] + ([item.get("name")] if named else [])
            cells += [visits] + [item[c] for c in GROUP_CSV_COLUMNS[1:]]
            rows.append(["" if c is None else c for c in cells])
        return to_csv(rows)

    def heatmap(self, cid: str) -> dict[str, Any]:
        """Return foot traffic (enter + dwell visits), coupons issued and redeemed per store,
        with the store's name and position, and the area that holds them (or None)."""
        campaign = self.campaigns.get(cid)
        return self._heat(cid, campaign, self._aggregate(cid).stores)

    def _heat(
        self, cid: str, campaign: dict[str, Any], per_store: dict[str, dict[str, int]]
    ) -> dict[str, Any]:
        cells = {sid: (0, 0, 0) for sid in campaign["targets"]["stores"]}
        for sid, m in per_store.items():
            cells[sid] = (m["enter"] + m["dwell"], m["issued"] - m["voided"], m["redeemed"])
        stores = []
        for sid, (visits, issued, redeemed) in sorted(cells.items()):
            store = self.campaigns.store(sid)
            if store is None:
                continue  # a store deleted since: nowhere to draw it
            stores.append(
                {
                    "store_id": sid,
                    "name": store["name"],
                    "lat": store["lat"],
                    "lon": store["lon"],
                    "visits": visits,
                    "issued": issued,
                    "redeemed": redeemed,
                }
            )
        return {"campaign_id": cid, "stores": stores, "bbox": _bbox(stores)}

    def usage(self, cid: str) -> dict[str, Any]:
        """Return how much of each cap and budget is used: the campaign's budget (coupons and
        money), and per offer its total and money caps and today's per-store caps (today in the
        campaign's zone). Per-shopper caps are listed as they are (their use is per shopper)."""
        campaign = self.campaigns.get(cid)
        day, _ = local_day_hour(self.campaigns.clock.now(), ZoneInfo(campaign["timezone"]))
        offers = self.campaigns.list_offers(cid)
        today = self.r.hgetall(keys.per_store_day(cid, day))
        per_store: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for name, value in today.items():
            oid, _, sid = name.partition("|")
            per_store[oid].append((sid, int(value)))
        budget, counters = campaign["budget"], campaign["counters"]
        items = []
        for offer in offers:
            caps, used = offer["caps"], offer["counters"]
            stores = []
            for sid, count in sorted(per_store.get(offer["id"], []), key=lambda x: (-x[1], x[0])):
                store = self.campaigns.store(sid)
                stores.append(
                    {"store_id": sid, "name": store["name"] if store else None, "used": count}
                )
            items.append(
                {
                    "offer_id": offer["id"],
                    "name": offer["name"],
                    "active": offer["active"],
                    "total": {"used": used["issued"], "cap": caps["total"]},
                    "value_fen": {"used": used["value_fen"], "cap": caps["value_fen"]},
                    "per_store_day": {"cap": caps["per_store_day"], "stores": stores},
                    "per_shopper": caps["per_shopper"],
                    "per_shopper_day": caps["per_shopper_day"],
                }
            )
        return {
            "day": day,
            "timezone": campaign["timezone"],
            "campaign": {
                "total": {"used": counters["issued"], "cap": budget["count"]},
                "value_fen": {"used": counters["value_fen"], "cap": budget["value_fen"]},
            },
            "offers": items,
        }

    def snapshot(self, cid: str, *, top_stores: int = 50) -> dict[str, Any]:
        """Return what the live funnel shows, from one pass over the statistics: the funnel
        and totals, the groups per day, the `top_stores` stores by visits (then coupons), cap
        and budget usage and the heatmap's stores.

        The pass reads the statistics hash in batches and folds each batch in as it arrives
        (no per-hour rows are built or sorted), so a server's event loop gets the processor
        back between batches while the next one is on its way."""
        campaign = self.campaigns.get(cid)
        agg = self._aggregate(cid)
        totals = agg.totals
        visits = totals["enter"] + totals["dwell"]
        ranked = sorted(
            agg.stores.items(),
            key=lambda item: (-(item[1]["enter"] + item[1]["dwell"]), -item[1]["issued"], item[0]),
        )
        stores = []
        for sid, m in ranked[:top_stores]:
            store = self.campaigns.store(sid)
            stores.append(
                {"store": sid, "name": store["name"] if store else None, **_with_rates(m)}
            )
        return {
            "campaign_id": cid,
            "name": campaign["name"],
            "status": campaign["status"],
            "timezone": campaign["timezone"],
            "funnel": {
                "visits": visits,
                "visitors": self.r.pfcount(keys.visitors(cid)),
                "coupons_from_visits": agg.from_visits,
                "coupons": totals["issued"] - totals["voided"],
                "redeemed": totals["redeemed"],
                "visit_to_coupon": _rate(agg.from_visits, visits),
                "coupon_to_redemption": _rate(
                    totals["redeemed"], totals["issued"] - totals["voided"]
                ),
            },
            "totals": _with_rates(totals),
            "refusals": dict(sorted(agg.refusals.items())),
            "days": [{"day": day, **_with_rates(m)} for day, m in sorted(agg.days.items())],
            "stores": stores,
            "stores_total": len(agg.stores),
            "usage": self.usage(cid),
            "heatmap": self._heat(cid, campaign, agg.stores),
        }

    def version(self, cid: str) -> int:
        """Return the statistics' version: every script that counts in them bumps it, so an
        unchanged version means an unchanged snapshot (apart from the clock's day in usage)."""
        return int(self.r.hget(keys.stats(cid), STATS_VERSION) or 0)

    def _aggregate(self, cid: str) -> _Aggregate:
        agg = _Aggregate()
        zero = dict.fromkeys(METRICS, 0)
        totals, days, stores = agg.totals, agg.days, agg.stores
        for name, raw in self.r.hscan_iter(keys.stats(cid), count=SCAN_BATCH):
            parts = name.split("|")
            if len(parts) != 5:
                if name.startswith("refused:"):
                    agg.refusals[parts[0].removeprefix("refused:")] += int(raw)
                continue  # the version, and anything unknown
            metric, _oid, store, hour, channel = parts
            if metric not in zero:
                continue
            value = int(raw)
            totals[metric] += value
            day = hour[:10]
            if day not in days:
                days[day] = dict(zero)
            days[day][metric] += value
            if store:
                if store not in stores:
                    stores[store] = dict(zero)
                stores[store][metric] += value
            if metric == "issued" and channel == "visit":
                agg.from_visits += value
        return agg

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


def _ledger_csv_row(entry: dict[str, Any]) -> list[Any]:
    known = set(LEDGER_CSV_COLUMNS)
    at = entry.get("at")
    row = []
    for column in LEDGER_CSV_COLUMNS:
        if column == "at_utc":
            row.append(
                datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")
                if at is not None
                else ""
            )
        elif column == "extra":
            extra = {k: v for k, v in entry.items() if k not in known}
            row.append(json.dumps(extra, separators=(",", ":"), sort_keys=True) if extra else "")
        else:
            row.append(entry.get(column))
    return row


def _bbox(stores: list[dict[str, Any]]) -> list[float] | None:
    """Return [south, west, north, east] around the stores with a margin, or None if none."""
    if not stores:
        return None
    lats, lons = [s["lat"] for s in stores], [s["lon"] for s in stores]
    pad_lat = max((max(lats) - min(lats)) * 0.1, 0.002)
    pad_lon = max((max(lons) - min(lons)) * 0.1, 0.002)
    return [min(lats) - pad_lat, min(lons) - pad_lon, max(lats) + pad_lat, max(lons) + pad_lon]


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
