"""Campaigns and their offers: create, change, move through statuses, and cached views of them."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import redis

from core.errors import Conflict, DomainError, NotFound, ValidationFailed
from core.scripts import LuaScripts

from . import keys
from .models import CampaignIn, CampaignPatch, OfferIn, OfferPatch
from .scripts import Scripts

# KEYS: grants, ledger   ARGV: stream id, grant JSON, 'grant' | 'revoke', actor, now
# Granting again or revoking what was not granted changes nothing and writes no ledger entry.
GRANT = """
local changed
if ARGV[3] == 'grant' then changed = redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
else changed = redis.call('HDEL', KEYS[1], ARGV[1]) end
if changed == 1 then
  redis.call('XADD', KEYS[2], '*', 'type', ARGV[3], 'stream_id', ARGV[1], 'actor', ARGV[4],
             'at', ARGV[5])
end
return redis.call('HGET', KEYS[1], ARGV[1])
"""

CACHE_TTL_S = 1.0  # how long a process trusts its cached campaign views before asking VERSION


class Refused(DomainError):
    """A promotions operation refused for a stable reason (the code is the reason)."""

    status = 409

    def __init__(
        self,
        reason: str,
        message: str | None = None,
        *,
        status: int | None = None,
        field: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            message or REASONS.get(reason, reason.lower().replace("_", " ")),
            code=reason,
            status=status,
            field=field,
            details=details,
        )
        self.reason = reason


REASONS = {
    "CAMPAIGN_NOT_FOUND": "no such campaign",
    "OFFER_NOT_FOUND": "no such offer in this campaign",
    "CAMPAIGN_NOT_LIVE": "the campaign is not live",
    "OUTSIDE_WINDOW": "outside the campaign's or offer's time window",
    "OFFER_INACTIVE": "the offer is switched off",
    "CHANNEL_NOT_ALLOWED": "the offer cannot be issued through this channel",
    "CAP_TOTAL_REACHED": "the total number of coupons has been issued",
    "CAP_BUDGET_REACHED": "the money budget has been spent",
    "CAP_PER_SHOPPER_REACHED": "the shopper has all the coupons of this offer they may have",
    "CAP_PER_SHOPPER_DAY_REACHED": "the shopper has today's coupons of this offer",
    "CAP_PER_STORE_REACHED": "this store's coupons for today have been issued",
    "NOT_ELIGIBLE": "the store is not eligible for this offer",
    "MEMBERSHIP_REQUIRED": "the offer needs a linked membership of its program",
    "UNTRUSTED": "the location behind this event is not trusted",
    "INVALID_TRANSITION": "the campaign cannot move to that status from its current one",
    "NOT_FOUND": "no such coupon",
    "ALREADY_REDEEMED": "the coupon has already been redeemed",
    "COUPON_EXPIRED": "the coupon has expired",
    "COUPON_VOIDED": "the coupon has been voided",
    "NOT_YET_VALID": "the coupon is not valid yet",
    "WRONG_STORE": "the coupon cannot be redeemed at this store",
    "MIN_SPEND_NOT_MET": "the basket is below the coupon's minimum spend",
    "NOT_REDEEMED": "the coupon has no redemption to void",
    "ORDER_MISMATCH": "the coupon was redeemed for another order",
    "VOID_WINDOW_PASSED": "the redemption is too old to be voided",
    "NOT_VOIDABLE": "only an issued, unredeemed coupon can be voided",
}


def local_day_hour(ts: float, tz: ZoneInfo) -> tuple[str, str]:
    """Return the campaign-local day ('2026-11-11') and hour ('2026-11-11T20') of a time."""
    at = datetime.fromtimestamp(ts, tz)
    return at.strftime("%Y-%m-%d"), at.strftime("%Y-%m-%dT%H")


@dataclass
class CampaignView:
    """What a process needs to know about a campaign to issue and redeem (cached briefly)."""

    id: str
    doc: dict[str, Any]
    offers: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.tz = ZoneInfo(self.doc["timezone"])
        targets = self.doc["targets"]
        self._cities = {c.lower() for c in targets["cities"]}
        self._brands = {b.lower() for b in targets["brands"]}
        self._stores = set(targets["stores"])
        self._offer_stores = {oid: set(o["eligible"]["stores"]) for oid, o in self.offers.items()}

    def targets(self, store: dict[str, Any]) -> bool:
        """Tell whether a store is one of the campaign's targets."""
        return (
            store["id"] in self._stores
            or store["city"].lower() in self._cities
            or store["brand"].lower() in self._brands
        )

    def offer_allows(self, oid: str, store: dict[str, Any]) -> bool:
        """Tell whether a coupon of an offer can be earned or redeemed at a store."""
        eligible = self.offers[oid]["eligible"]
        if eligible["mode"] == "stores":
            return store["id"] in self._offer_stores[oid]
        if eligible["mode"] == "brand":
            return store["brand"].lower() == eligible["brand"].lower()
        return self.targets(store)


class Campaigns:
    """Campaign and offer records on Redis, one hash tag per campaign."""

    def __init__(self, r: redis.Redis, clock, catalog, scripts: Scripts) -> None:
        self.r = r
        self.clock = clock
        self.catalog = catalog
        self.scripts = scripts
        self._grant_script = LuaScripts(r, {"grant": GRANT})
        self._views: dict[str, CampaignView] = {}
        self._version: int | None = None
        self._checked = 0.0
        self._stores: tuple[int, dict[str, dict[str, Any]]] | None = None
        self._stores_checked = 0.0

    # -- campaigns -----------------------------------------------------------------------
    def create(self, data: CampaignIn, actor: str) -> dict[str, Any]:
        """Create a draft campaign and return it."""
        self._check_stores(data.targets.stores, "targets.stores")
        cid = str(self.r.incr(keys.CAMPAIGN_SEQ))
        now = self.clock.now()
        doc = data.model_dump()
        doc.update(id=cid, created_at=now, created_by=actor)
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(
            keys.meta(cid),
            mapping={
                "doc": json.dumps(doc),
                "status": "draft",
                "status_at": now,
                "starts": data.starts_at,
                "ends": data.ends_at,
                "budget_count": _cap(data.budget.count),
                "budget_value": _cap(data.budget.value_fen),
                "issued": 0,
                "value": 0,
                "redeemed": 0,
                "discount": 0,
                "seq": 0,
                "offer_seq": 0,
            },
        )
        pipe.execute()
        self._index(cid, now)
        return self.get(cid)

    def _index(self, cid: str, now: float) -> None:
        pipe = self.r.pipeline(transaction=False)
        pipe.zadd(keys.CAMPAIGNS, {cid: int(cid)})
        pipe.sadd(keys.ACTIVE, cid)
        pipe.incr(keys.VERSION)
        pipe.execute()
        self._views.clear()

    def get(self, cid: str) -> dict[str, Any]:
        """Return a campaign with its current status and counters (NotFound if missing)."""
        self._status(cid, "", "clock")
        meta = self.r.hgetall(keys.meta(cid))
        if not meta:
            raise NotFound("no such campaign", code="campaign_not_found", field="campaign_id")
        return _campaign_dict(meta)

    def list(
        self, *, cursor: str | None = None, limit: int = 50, status: str | None = None
    ) -> dict[str, Any]:
        """Page through campaigns, newest first (ids grow with creation; cursor = last id)."""
        top = f"({int(cursor)}" if cursor else "+inf"
        items: list[dict[str, Any]] = []
        more = False
        while not more:
            ids = self.r.zrevrangebyscore(keys.CAMPAIGNS, top, "-inf", start=0, num=limit + 1)
            if not ids:
                break
            pipe = self.r.pipeline(transaction=False)
            for cid in ids:
                pipe.hgetall(keys.meta(cid))
            now = self.clock.now()
            for meta in pipe.execute():
                if not meta:
                    continue
                view = _campaign_dict(meta, now)
                if status and view["status"] != status:
                    continue
                if len(items) == limit:
                    more = True
                    break
                items.append(view)
            if len(ids) <= limit:
                break
            top = f"({ids[-1]}"
        return {"items": items, "next_cursor": items[-1]["id"] if more else None}

    def update(self, cid: str, patch: CampaignPatch) -> dict[str, Any]:
        """Change a campaign's name, window, zone, targets, budget or trust floor."""
        # null means "leave as is"; targets and budget given are replaced as a whole.
        changes = {
            name: getattr(patch, name)
            for name in patch.model_fields_set
            if getattr(patch, name) is not None
        }
        changes = {k: v.model_dump() if hasattr(v, "model_dump") else v for k, v in changes.items()}
        if "targets" in changes:
            self._check_stores(changes["targets"]["stores"], "targets.stores")
        key = keys.meta(cid)
        with self.r.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)
                    meta = pipe.hgetall(key)
                    if not meta:
                        raise NotFound(
                            "no such campaign", code="campaign_not_found", field="campaign_id"
                        )
                    if _campaign_dict(meta, self.clock.now())["status"] == "ended":
                        raise Conflict(
                            "an ended campaign cannot change",
                            code="CAMPAIGN_ENDED",
                            field="campaign_id",
                        )
                    doc = json.loads(meta["doc"])
                    for name, value in changes.items():
                        if value is not None:
                            doc[name] = value
                    CampaignIn.model_validate({k: doc[k] for k in CampaignIn.model_fields})
                    pipe.multi()
                    pipe.hset(
                        key,
                        mapping={
                            "doc": json.dumps(doc),
                            "starts": doc["starts_at"],
                            "ends": doc["ends_at"],
                            "budget_count": _cap(doc["budget"]["count"]),
                            "budget_value": _cap(doc["budget"]["value_fen"]),
                        },
                    )
                    pipe.execute()
                    break
                except redis.WatchError:
                    continue
        self._bump_version()
        return self.get(cid)

    def transition(self, cid: str, to: str, actor: str) -> dict[str, Any]:
        """Move a campaign to another status (only allowed transitions)."""
        reply = self._status(cid, to, actor)
        if reply[0] != "ok":
            reason = "CAMPAIGN_NOT_FOUND" if reply[1] == "NOT_FOUND" else reply[1]
            details = {"status": reply[2]} if len(reply) > 2 else None
            message = REASONS[reason]
            if reason == "OUTSIDE_WINDOW":
                message = (
                    "a scheduled campaign goes live by itself at its start; "
                    "it cannot go live outside its window"
                )
            raise Refused(
                reason,
                message,
                field="to",
                details=details,
                status=404 if reason == "CAMPAIGN_NOT_FOUND" else 409,
            )
        self._bump_version()
        return self.get(cid)

    def _status(self, cid: str, to: str, actor: str) -> list:
        return self.scripts.call(
            "transition", [keys.meta(cid), keys.ledger(cid)], [repr(self.clock.now()), to, actor]
        )

    def tick(self) -> dict[str, str]:
        """Apply the clock's transitions to every campaign not yet ended; return new statuses."""
        out = {}
        for cid in self.r.smembers(keys.ACTIVE):
            reply = self._status(cid, "", "clock")
            if reply[0] != "ok" or reply[1] == "ended":
                self.r.srem(keys.ACTIVE, cid)
            if reply[0] == "ok":
                out[cid] = reply[1]
        return out

    # -- grants to live streams ----------------------------------------------------------
    def record_grant(
        self, cid: str, stream_id: str, actor: str, *, granted: bool
    ) -> dict[str, Any] | None:
        """Record that a stream may (or no longer may) drop the campaign's offers, with a
        ledger entry `grant` / `revoke`; return the grant (None once revoked).

        The live package keeps the grant its drops check (on the stream's slot); this is the
        campaign's own record, for listing and audit.
        """
        campaign = self.get(cid)
        if granted and campaign["status"] == "ended":
            raise Conflict(
                "an ended campaign grants no streams", code="CAMPAIGN_ENDED", field="campaign_id"
            )
        now = self.clock.now()
        record = {
            "campaign_id": cid,
            "stream_id": stream_id,
            "granted_by": actor,
            "granted_at": now,
        }
        raw = self._grant_script.call(
            "grant",
            [keys.grants(cid), keys.ledger(cid)],
            [stream_id, json.dumps(record), "grant" if granted else "revoke", actor, repr(now)],
        )
        return json.loads(raw) if raw else None

    def grants(self, cid: str) -> list[dict[str, Any]]:
        """Return the streams that may drop the campaign's offers, by stream id."""
        self.get(cid)
        raw = self.r.hgetall(keys.grants(cid))
        return sorted((json.loads(v) for v in raw.values()), key=lambda g: int(g["stream_id"]))

    # -- offers --------------------------------------------------------------------------
    def create_offer(self, cid: str, data: OfferIn, actor: str) -> dict[str, Any]:
        """Add an offer to a campaign that has not ended."""
        campaign = self.get(cid)
        if campaign["status"] == "ended":
            raise Conflict(
                "an ended campaign takes no new offers", code="CAMPAIGN_ENDED", field="campaign_id"
            )
        self._check_stores(data.eligible.stores, "eligible.stores")
        if data.membership_program and not self.r.hexists(keys.PROGRAMS, data.membership_program):
            raise ValidationFailed(
                "no such membership program", code="unknown_program", field="membership_program"
            )
        oid = f"o{self.r.hincrby(keys.meta(cid), 'offer_seq', 1)}"
        doc = data.model_dump()
        doc.update(
            id=oid,
            campaign_id=cid,
            created_at=self.clock.now(),
            created_by=actor,
            value_fen=data.value_fen(),
        )
        fields = _offer_fields(doc)
        fields.update(
            doc=json.dumps(doc),
            issued=0,
            value=0,
            redeemed=0,
            discount=0,
            value_fen=data.value_fen(),
            valid_until="" if data.validity.ends_at is None else data.validity.ends_at,
        )
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(keys.offer(cid, oid), mapping=fields)
        pipe.zadd(keys.offers(cid), {oid: self.clock.now()})
        pipe.execute()
        self._bump_version()
        return self.get_offer(cid, oid)

    def get_offer(self, cid: str, oid: str) -> dict[str, Any]:
        """Return an offer with its counters."""
        raw = self.r.hgetall(keys.offer(cid, oid))
        if not raw:
            raise NotFound("no such offer", code="offer_not_found", field="offer_id")
        return _offer_dict(raw)

    def list_offers(self, cid: str) -> list[dict[str, Any]]:
        """Return every offer of a campaign, oldest first."""
        self.get(cid)
        oids = self.r.zrange(keys.offers(cid), 0, -1)
        pipe = self.r.pipeline(transaction=False)
        for oid in oids:
            pipe.hgetall(keys.offer(cid, oid))
        return [_offer_dict(raw) for raw in pipe.execute() if raw]

    def update_offer(self, cid: str, oid: str, patch: OfferPatch) -> dict[str, Any]:
        """Change an offer's name, caps, channels, visit trigger or on/off switch.

        The terms (discount, minimum spend, validity, eligibility) cannot change once created,
        so every coupon of an offer means the same thing; make a new offer instead.
        """
        key = keys.offer(cid, oid)
        changes = {k: v for k, v in patch.model_dump(exclude_unset=True).items() if v is not None}
        with self.r.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.hget(key, "doc")
                    if raw is None:
                        raise NotFound("no such offer", code="offer_not_found", field="offer_id")
                    doc = json.loads(raw)
                    for name, value in changes.items():
                        if name == "caps":
                            doc["caps"].update(value)  # caps not named keep their value
                        elif value is not None:
                            doc[name] = value
                    fields = _offer_fields(doc)
                    fields["doc"] = json.dumps(doc)
                    pipe.multi()
                    pipe.hset(key, mapping=fields)
                    pipe.execute()
                    break
                except redis.WatchError:
                    continue
        self._bump_version()
        return self.get_offer(cid, oid)

    def _bump_version(self) -> None:
        """Tell every process's view cache that a campaign or offer changed.

        Bumped after the change's transaction, not inside it: the change's keys live under the
        campaign's tag and VERSION is global, so on Redis Cluster they are in different slots
        and one MULTI cannot hold both. A reader that sees the new version reads the committed
        change; one that read the old version drops its view at its next check.
        """
        self.r.incr(keys.VERSION)
        self._views.clear()

    # -- cached views for the hot paths --------------------------------------------------
    def view(self, cid: str, *, fresh: bool = False) -> CampaignView:
        """Return a cached view of a campaign and its offers (NotFound if missing).

        Another process's changes show within CACHE_TTL_S; `fresh` reads Redis now (used when
        the cached view lacks an offer that may have just been created elsewhere).
        """
        self._maybe_invalidate()
        view = None if fresh else self._views.get(cid)
        if view is None:
            pipe = self.r.pipeline(transaction=False)
            pipe.hget(keys.meta(cid), "doc")
            pipe.zrange(keys.offers(cid), 0, -1)
            raw, oids = pipe.execute()
            if raw is None:
                raise Refused("CAMPAIGN_NOT_FOUND", status=404, field="campaign_id")
            pipe = self.r.pipeline(transaction=False)
            for oid in oids:
                pipe.hget(keys.offer(cid, oid), "doc")
            offers = {
                oid: json.loads(doc) for oid, doc in zip(oids, pipe.execute(), strict=True) if doc
            }
            view = CampaignView(cid, json.loads(raw), offers)
            self._views[cid] = view
        return view

    def active_views(self) -> list[CampaignView]:
        """Return views of every campaign not yet ended (for the visit consumer).

        Asks VERSION every time (one GET per event batch), so an offer created a moment
        before a visit already applies to it.
        """
        self._checked = 0.0
        views = []
        for cid in sorted(self.r.smembers(keys.ACTIVE), key=int):
            try:
                views.append(self.view(cid))
            except Refused:
                continue
        return views

    def live_ids(self, cids: list[str]) -> set[str]:
        """Return which of these campaigns are live now (by the clock's transitions too)."""
        if not cids:
            return set()
        pipe = self.r.pipeline(transaction=False)
        for cid in cids:
            pipe.hmget(keys.meta(cid), "status", "starts", "ends")
        now = self.clock.now()
        return {
            cid
            for cid, (status, starts, ends) in zip(cids, pipe.execute(), strict=True)
            if status and _effective(status, float(starts), float(ends), now) == "live"
        }

    def _maybe_invalidate(self) -> None:
        now = time.monotonic()
        if now - self._checked < CACHE_TTL_S:
            return
        self._checked = now
        version = int(self.r.get(keys.VERSION) or 0)
        if version != self._version:
            self._version = version
            self._views.clear()

    def store(self, store_id: str) -> dict[str, Any] | None:
        """Return a store record from a per-process copy of the catalog (None if unknown)."""
        now = time.monotonic()
        if self._stores is None or now - self._stores_checked >= CACHE_TTL_S:
            self._stores_checked = now
            version = self.catalog.version()
            if self._stores is None or self._stores[0] != version:
                self._stores = self.catalog.load_all()
        record = self._stores[1].get(store_id)
        if record is None and store_id:
            # A store created within the cache's lifetime: ask once, directly.
            found = self.catalog.get_many([store_id])[0]
            if found is not None:
                self._stores[1][store_id] = found
                return found
        return record

    def _check_stores(self, store_ids: list[str], field_name: str) -> None:
        if not store_ids:
            return
        for i, record in enumerate(self.catalog.get_many(store_ids)):
            if record is None:
                raise ValidationFailed(
                    f"no store {store_ids[i]!r}", code="unknown_store", field=f"{field_name}[{i}]"
                )


def _cap(value: int | None) -> str:
    return "" if value is None else str(value)


def _offer_fields(doc: dict[str, Any]) -> dict[str, Any]:
    caps = doc["caps"]
    return {
        "active": "1" if doc["active"] else "0",
        "channels": "," + ",".join(doc["channels"]) + ",",
        "cap_total": _cap(caps["total"]),
        "cap_value": _cap(caps["value_fen"]),
        "cap_shopper": _cap(caps["per_shopper"]),
        "cap_shopper_day": _cap(caps["per_shopper_day"]),
        "cap_store_day": _cap(caps["per_store_day"]),
    }


def _effective(status: str, starts: float, ends: float, now: float) -> str:
    if status in ("scheduled", "live", "paused") and now >= ends:
        return "ended"
    if status == "scheduled" and now >= starts:
        return "live"
    return status


def _campaign_dict(meta: dict[str, str], now: float | None = None) -> dict[str, Any]:
    doc = json.loads(meta["doc"])
    status = meta["status"]
    if now is not None:
        status = _effective(status, float(meta["starts"]), float(meta["ends"]), now)
    doc["status"] = status
    doc["status_at"] = float(meta.get("status_at") or 0)
    doc["counters"] = {
        "issued": int(meta.get("issued") or 0),
        "value_fen": int(meta.get("value") or 0),
        "redeemed": int(meta.get("redeemed") or 0),
        "discount_fen": int(meta.get("discount") or 0),
    }
    return doc


def _offer_dict(raw: dict[str, str]) -> dict[str, Any]:
    doc = json.loads(raw["doc"])
    doc["counters"] = {
        "issued": int(raw.get("issued") or 0),
        "value_fen": int(raw.get("value") or 0),
        "redeemed": int(raw.get("redeemed") or 0),
        "discount_fen": int(raw.get("discount") or 0),
    }
    return doc
