"""One issuance path for every channel: visit, game, live drop and manual."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import redis

from core.durability import Durability

from . import keys
from .campaigns import Campaigns, Refused, local_day_hour
from .scripts import Scripts

log = logging.getLogger(__name__)

DAY_KEY_TTL_S = 3 * 86_400  # per-day counters outlive their day in every time zone
IDEMPOTENCY_KEY = r"^[A-Za-z0-9_.:|\-]{1,200}$"


class CouponNotifier(Protocol):
    """Where a newly issued coupon is announced (the shopper's socket room, in the app)."""

    def coupon_issued(self, shopper_id: str, coupon: dict[str, Any]) -> None:
        """Announce a coupon to its shopper."""


class NoNotifier:
    """Announce nothing (scripts, benchmarks)."""

    def coupon_issued(self, shopper_id: str, coupon: dict[str, Any]) -> None:
        """Do nothing."""


@dataclass
class IssueResult:
    """The answer of one issuance: a new coupon, the original one again, or a refusal."""

    outcome: str  # "issued", "existing" or "refused"
    coupon: dict[str, Any] | None = None
    reason: str | None = None
    prelude: list[Any] | None = None  # replies of the caller's prelude commands, if they ran

    @property
    def ok(self) -> bool:
        """Tell whether the shopper holds the coupon (new or from an earlier attempt)."""
        return self.outcome != "refused"


def coupon_from(raw_coupon: str, raw_state: str) -> dict[str, Any]:
    """Merge a coupon's fixed terms and its mutable state into one record."""
    coupon = json.loads(raw_coupon)
    state = json.loads(raw_state)
    coupon["status"] = state["status"]
    coupon["valid_from"] = state["valid_from"]
    coupon["expires_at"] = state["expires_at"]
    if "redemption" in state:
        r = dict(state["redemption"])
        r.pop("hour", None)
        coupon["redemption"] = r
    for name in ("expired_at", "voided_at", "void_reason", "voided_redemptions"):
        if name in state:
            coupon[name] = state[name]
    return coupon


class Issuer:
    """Issue coupons of an offer to shoppers, atomically checking state, caps and idempotency."""

    def __init__(
        self,
        r: redis.Redis,
        clock,
        campaigns: Campaigns,
        scripts: Scripts,
        memberships,
        notifier: CouponNotifier | None = None,
        durability: Durability | None = None,
    ) -> None:
        self.r = r
        self.clock = clock
        self.campaigns = campaigns
        self.scripts = scripts
        self.memberships = memberships
        self.notifier = notifier or NoNotifier()
        self.durability = durability or Durability(r)

    def issue(
        self,
        cid: str,
        oid: str,
        shopper_id: str,
        *,
        channel: str,
        idempotency_key: str,
        store_id: str | None = None,
        actor: str = "system",
        source: dict[str, Any] | None = None,
        trust: int | None = None,
        now: float | None = None,
        prelude: Callable[[Any], int] | None = None,
    ) -> IssueResult:
        """Issue one coupon, or return the coupon this idempotency key issued before.

        Refusals come back as IssueResult(outcome="refused", reason=...), never as
        exceptions, so that consumers and drops can count them; an unknown campaign or
        offer raises Refused (404). `prelude(pipe)` may queue commands of the caller's own
        (returning how many) to ride in the issuance's round trip; their replies come back in
        `prelude` — None when the attempt was refused before reaching Redis.
        """
        now = self.clock.now() if now is None else now
        # Keys are scoped to the offer: the same client key on two offers means two coupons.
        idempotency_key = f"{oid}|{idempotency_key}"
        view = self.campaigns.view(cid)
        offer = view.offers.get(oid)
        if offer is None:
            view = self.campaigns.view(cid, fresh=True)  # created since the cache was filled?
            offer = view.offers.get(oid)
            if offer is None:
                raise Refused("OFFER_NOT_FOUND", status=404, field="offer_id")
        day, hour = local_day_hour(now, view.tz)
        store = ""
        if store_id:
            record = self.campaigns.store(store_id)
            if record is None or not view.offer_allows(oid, record):
                return self._refuse(
                    cid, oid, store_id, hour, channel, "NOT_ELIGIBLE", idempotency_key
                )
            store = store_id
        if trust is not None and trust < view.doc["min_trust"]:
            return self._refuse(cid, oid, store, hour, channel, "UNTRUSTED", idempotency_key)
        program = offer.get("membership_program")
        if program and not self.memberships.has(shopper_id, program):
            return self._refuse(
                cid, oid, store, hour, channel, "MEMBERSHIP_REQUIRED", idempotency_key
            )
        validity = offer["validity"]
        if validity["days"]:
            valid_from, expires_at = now, now + validity["days"] * 86_400
        else:
            valid_from, expires_at = validity["starts_at"], validity["ends_at"]
        terms = coupon_terms(
            view,
            oid,
            shopper_id,
            now=now,
            store_id=store or None,
            source={"channel": channel, **(source or {})},
        )
        tail = json.dumps(terms, separators=(",", ":"), ensure_ascii=False)[1:]
        # The wallet's index first, answered before the coupon is written: if this process
        # dies after it, the shopper has an empty campaign in the index, never a coupon the
        # wallet cannot find. Its own round trip: the index ({u:<shopper>}) and the coupon
        # ({c:<cid>}) may live on two nodes, and a cluster pipeline keeps no order between
        # nodes (docs/cluster-audit.md §3a).
        index = keys.shopper_campaigns(shopper_id)
        self.r.sadd(index, cid)
        script_keys = issue_keys(cid, oid, shopper_id, day)
        args = [
            repr(now),
            oid,
            shopper_id,
            store,
            channel,
            idempotency_key,
            cid,
            tail,
            repr(valid_from),
            repr(expires_at),
            hour,
            day,
            DAY_KEY_TTL_S,
            actor,
            json.dumps(source or {}, separators=(",", ":")),
        ]
        before: list[Any] | None = None
        if prelude is None:
            # One command: no pipeline object (on a cluster, a pipeline costs far more Python
            # than the one EVALSHA it would carry).
            reply = self.scripts.call("issue", script_keys, args)
        else:
            pipe = self.r.pipeline(transaction=False)
            extra = prelude(pipe)
            self.scripts.queue(pipe, "issue", script_keys, args)
            replies = pipe.execute(raise_on_error=False)
            before, reply = replies[:extra], replies[extra]
            if isinstance(reply, redis.exceptions.NoScriptError):
                self.scripts.load()
                reply = self.scripts.call("issue", script_keys, args)
            elif isinstance(reply, Exception):
                raise reply
        kind = reply[0]
        if kind == "no":
            if reply[1] in ("CAMPAIGN_NOT_FOUND", "OFFER_NOT_FOUND"):
                raise Refused(reply[1], status=404)
            return IssueResult("refused", reason=reply[1], prelude=before)
        coupon = coupon_from(reply[1], reply[2])
        # Acknowledged only once on the asked replicas (REDIS_WAIT_REPLICAS): the coupon, the
        # caller's prelude (same campaign tag) and the wallet's index. A repeat ("existing")
        # waits too: the first attempt may have been answered 503 before its replicas had it.
        self.durability.confirm(script_keys[0], index)
        if kind == "dup":
            return IssueResult("existing", coupon, prelude=before)
        try:
            self.notifier.coupon_issued(shopper_id, coupon)
        except Exception:  # the coupon is safely stored; a lost notification is not fatal
            log.exception("coupon_issued notification failed")
        return IssueResult("issued", coupon, prelude=before)

    def _refuse(
        self,
        cid: str,
        oid: str,
        store: str,
        hour: str,
        channel: str,
        reason: str,
        idempotency_key: str,
    ) -> IssueResult:
        # A retry of an attempt that issued before (the membership was unlinked since, say)
        # still gets its original coupon: the key decides first, as in the script.
        seq = self.r.hget(keys.idempotency(cid), idempotency_key)
        if seq is not None:
            pipe = self.r.pipeline(transaction=False)
            pipe.hget(keys.coupons(cid), seq)
            pipe.hget(keys.state(cid), seq)
            raw, state = pipe.execute()
            if raw is not None and state is not None:
                return IssueResult("existing", coupon_from(raw, state))
        # Counted like the script's refusals, so analytics show every reason.
        pipe = self.r.pipeline(transaction=True)  # the count and the version together
        pipe.hincrby(keys.stats(cid), f"refused:{reason}|{oid}|{store}|{hour}|{channel}", 1)
        pipe.hincrby(keys.stats(cid), "v", 1)  # reports.STATS_VERSION, as the scripts bump it
        pipe.execute()
        return IssueResult("refused", reason=reason)


def coupon_terms(
    view, oid: str, shopper_id: str, *, now: float, store_id: str | None, source: dict[str, Any]
) -> dict[str, Any]:
    """Return a new coupon's fixed terms, copied from its offer (they never change later)."""
    offer = view.offers[oid]
    return {
        "campaign_id": view.id,
        "offer_id": oid,
        "shopper_id": shopper_id,
        "title": offer_title(offer),
        "offer_name": offer["name"],
        "kind": offer["kind"],
        "amount_off_fen": offer["amount_off_fen"],
        "percent_off": offer["percent_off"],
        "max_off_fen": offer["max_off_fen"],
        "gift_item": offer["gift_item"],
        "min_spend_fen": offer["min_spend_fen"],
        "currency": "CNY",
        "campaign_name": view.doc["name"],
        "brand": _brand(view, offer),
        "issued_at": now,
        "store_id": store_id,
        "source": source,
    }


def issue_keys(cid: str, oid: str, shopper_id: str, day: str) -> list[str]:
    """Return the keys of the ISSUE script, in its order (all under the campaign's tag)."""
    return [
        keys.meta(cid),
        keys.offer(cid, oid),
        keys.per_shopper(cid),
        keys.per_shopper_day(cid, day),
        keys.per_store_day(cid, day),
        keys.idempotency(cid),
        keys.coupons(cid),
        keys.state(cid),
        keys.wallet(cid, shopper_id),
        keys.expiring(cid),
        keys.ledger(cid),
        keys.stats(cid),
    ]


def _brand(view, offer: dict[str, Any]) -> str:
    if offer["eligible"]["mode"] == "brand":
        return offer["eligible"]["brand"]
    brands = view.doc["targets"]["brands"]
    return brands[0] if len(brands) == 1 else view.doc["name"]


def yuan(fen: int) -> str:
    """Format fen as yuan for people: 2000 -> '¥20', 1250 -> '¥12.50'."""
    whole, cents = divmod(int(fen), 100)
    return f"¥{whole}" if cents == 0 else f"¥{whole}.{cents:02d}"


def offer_title(offer: dict[str, Any]) -> str:
    """Return the short headline of an offer, e.g. '¥20 off' or '15% off, up to ¥30'."""
    if offer["kind"] == "amount_off":
        return f"{yuan(offer['amount_off_fen'])} off"
    if offer["kind"] == "percent_off":
        return f"{offer['percent_off']}% off, up to {yuan(offer['max_off_fen'])}"
    return f"Free {offer['gift_item']}"


def discount_for(coupon: dict[str, Any], basket_fen: int) -> int:
    """Return the discount in fen a coupon gives on a basket (gifts give none off the bill)."""
    if coupon["kind"] == "amount_off":
        return min(coupon["amount_off_fen"], basket_fen)
    if coupon["kind"] == "percent_off":
        return min(basket_fen * coupon["percent_off"] // 100, coupon["max_off_fen"])
    return 0
