"""The wallet (a shopper's coupons), redemption at the till, voids, and expiry."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import redis

from core.durability import Durability
from core.errors import Forbidden, NotFound, RateLimited
from core.throttle import Rule, Throttle

from . import keys
from .campaigns import Campaigns, Refused, local_day_hour
from .codes import CouponCodec, CouponRef, InvalidCode, is_token, no_such_code, split_coupon_id
from .issuance import coupon_from, discount_for
from .scripts import Scripts

STATUSES = ("issued", "redeemed", "voided", "expired")
WALLET_SCAN_MAX = 5_000  # coupons looked at per wallet page, at most
# Refusals that count towards the invalid-code throttle: a used, voided, expired or foreign
# coupon presented again looks like fraud; a basket below the minimum spend does not.
SUSPICIOUS = frozenset({"ALREADY_REDEEMED", "COUPON_VOIDED", "COUPON_EXPIRED", "WRONG_STORE"})


# The columns of a campaign's coupon export (see Coupons.csv_rows).
COUPON_CSV_COLUMNS = (
    "id",
    "offer_id",
    "offer_name",
    "shopper_id",
    "store_id",
    "status",
    "kind",
    "amount_off_fen",
    "percent_off",
    "max_off_fen",
    "gift_item",
    "min_spend_fen",
    "issued_at",
    "valid_from",
    "expires_at",
    "redeemed_at",
    "redeemed_store_id",
    "order_ref",
    "basket_fen",
    "discount_fen",
    "voided_at",
    "void_reason",
    "source",
)


@dataclass(frozen=True)
class Actor:
    """Who acts at the till or in the console."""

    user_id: str
    role: str
    store_id: str | None = None


@dataclass
class RedeemSettings:
    """Tunables of redemption (from the app's configuration)."""

    void_window_s: int = 7 * 86_400
    invalid_max: int = 10  # invalid codes per window, per till, staff member or shopper
    invalid_window_s: int = 600


class Coupons:
    """Read coupons (applying expiry), list wallets, redeem, void and sweep expiries."""

    def __init__(
        self,
        r: redis.Redis,
        clock,
        campaigns: Campaigns,
        scripts: Scripts,
        codec: CouponCodec,
        settings: RedeemSettings | None = None,
        throttle: Throttle | None = None,
        durability: Durability | None = None,
    ) -> None:
        self.r = r
        self.durability = durability or Durability(r)
        self.clock = clock
        self.campaigns = campaigns
        self.scripts = scripts
        self.codec = codec
        self.settings = settings or RedeemSettings()
        self.throttle = throttle or Throttle(r)
        limit, window = self.settings.invalid_max, self.settings.invalid_window_s
        message = "too many invalid coupon codes; wait before scanning again"
        self.rules = {
            kind: Rule(
                f"{keys.THROTTLE}:{kind}",
                limit,
                window,
                message,
                code="too_many_invalid_codes",
                field="code",
            )
            for kind in ("staff", "till", "shopper")
        }

    # -- reading -------------------------------------------------------------------------
    def get(self, coupon_id: str, *, field: str = "coupon_id") -> dict[str, Any]:
        """Return one coupon; a coupon past its expiry is expired here (and in the ledger)."""
        ref = split_coupon_id(coupon_id, field)
        return self._load(ref, field=field)

    def _load(
        self, ref: CouponRef, *, field: str = "coupon_id", expire: bool = True
    ) -> dict[str, Any]:
        pipe = self.r.pipeline(transaction=False)
        pipe.hget(keys.coupons(ref.campaign_id), ref.seq)
        pipe.hget(keys.state(ref.campaign_id), ref.seq)
        raw, state = pipe.execute()
        if raw is None or state is None:
            raise NotFound("no such coupon", code="NOT_FOUND", field=field)
        coupon = coupon_from(raw, state)
        if expire and coupon["status"] == "issued" and self.clock.now() >= coupon["expires_at"]:
            self._expire(ref.campaign_id, [ref.seq])
            return self._load(ref, field=field, expire=False)
        return coupon

    def present(self, coupon: dict[str, Any], *, owner: bool) -> dict[str, Any]:
        """Add the codes: the owner sees the signed token and short code, others the short code."""
        out = dict(coupon)
        out["code"] = self.codec.short_code(coupon["id"])
        if owner:
            out["token"] = self.codec.token(coupon["id"])
        return out

    def owned(self, shopper_id: str, coupon_id: str) -> dict[str, Any]:
        """Return a coupon of this shopper (404 for anyone else's)."""
        coupon = self.get(coupon_id)
        if coupon["shopper_id"] != shopper_id:
            raise NotFound("no such coupon", code="NOT_FOUND", field="coupon_id")
        return coupon

    def wallet(
        self,
        shopper_id: str,
        *,
        status: str | None = None,
        cursor: str | None = None,
        limit: int = 20,
    ) -> dict[str, Any]:
        """List a shopper's coupons, newest first, by status, paged by cursor."""
        cids = sorted(self.r.smembers(keys.shopper_campaigns(shopper_id)), key=int)
        pipe = self.r.pipeline(transaction=False)
        for cid in cids:
            pipe.zrevrange(keys.wallet(cid, shopper_id), 0, WALLET_SCAN_MAX - 1, withscores=True)
        entries = []
        for cid, rows in zip(cids, pipe.execute(), strict=True):
            entries += [(score, int(cid), int(seq)) for seq, score in rows]
        entries.sort(reverse=True)
        if cursor:
            position = _parse_cursor(cursor)
            entries = [e for e in entries if e < position]
        items: list[dict[str, Any]] = []
        more = False
        i = 0
        while i < len(entries) and not more:
            chunk = entries[i : i + max(limit * 2, 20)]
            i += len(chunk)
            pipe = self.r.pipeline(transaction=False)
            for _, cid, seq in chunk:
                pipe.hget(keys.coupons(str(cid)), seq)
                pipe.hget(keys.state(str(cid)), seq)
            replies = pipe.execute()
            for n, entry in enumerate(chunk):
                raw, state = replies[2 * n], replies[2 * n + 1]
                if raw is None or state is None:
                    continue
                coupon = coupon_from(raw, state)
                if coupon["status"] == "issued" and self.clock.now() >= coupon["expires_at"]:
                    coupon = self._load(CouponRef(str(entry[1]), entry[2]))
                if status and coupon["status"] != status:
                    continue
                if len(items) == limit:
                    more = True
                    break
                items.append((entry, coupon))
        next_cursor = None
        if more:
            score, cid, seq = items[-1][0]
            next_cursor = f"{score!r}:{cid}-{seq}"
        return {
            "items": [self.present(c, owner=True) for _, c in items],
            "next_cursor": next_cursor,
        }

    # -- redemption ----------------------------------------------------------------------
    def preview(self, code: str, basket_fen: int, actor: Actor) -> dict[str, Any]:
        """Say whether a code applies to a basket at the actor's store, and the discount."""
        ref, coupon = self._scan(code, actor, self._usable_here)
        reason = self._refusal(coupon, basket_fen, actor)
        discount = 0 if reason else discount_for(coupon, basket_fen)
        if reason in SUSPICIOUS:
            self._count_invalid(actor, coupon["shopper_id"])
        return {
            "applies": reason is None,
            "reason": reason,
            "message": None if reason is None else _message(reason),
            "discount_fen": discount,
            "pay_fen": basket_fen - discount,
            "gift_item": coupon["gift_item"] if reason is None else None,
            "coupon": self._till_view(coupon),
        }

    def redeem(self, code: str, basket_fen: int, order_ref: str, actor: Actor) -> dict[str, Any]:
        """Redeem a coupon for an order at the actor's store; the same order again is a no-op."""
        ref, coupon = self._scan(code, actor, self._usable_here)
        repeat = (
            coupon["status"] == "redeemed"
            and coupon["redemption"]["order_ref"] == order_ref
            and coupon["redemption"]["store_id"] == actor.store_id
        )
        if not repeat:
            reason = self._refusal(coupon, basket_fen, actor, checks_state=False)
            if reason in SUSPICIOUS:
                self._count_invalid(actor, coupon["shopper_id"])
            if reason:
                raise Refused(reason, status=403 if reason == "WRONG_STORE" else 409, field="code")
        view = self.campaigns.view(ref.campaign_id)
        now = self.clock.now()
        _, hour = local_day_hour(now, view.tz)
        reply = self.scripts.call(
            "redeem",
            [
                *_redeem_keys(ref.campaign_id, coupon["offer_id"]),
                keys.store_redemptions(ref.campaign_id, actor.store_id or ""),
            ],
            [
                repr(now),
                ref.seq,
                order_ref,
                actor.store_id or "",
                actor.user_id,
                basket_fen,
                discount_for(coupon, basket_fen),
                hour,
                ref.campaign_id,
                f"{actor.role}:{actor.user_id}",
            ],
        )
        state = reply[2] if len(reply) > 2 else reply[1] if reply[0] != "no" else None
        if reply[0] == "no":
            if state is not None:
                coupon = _with_state(coupon, state)
            if reply[1] in SUSPICIOUS:
                self._count_invalid(actor, coupon["shopper_id"])
            details = None
            if reply[1] == "ALREADY_REDEEMED":
                r = coupon.get("redemption") or {}
                details = {
                    "store_id": r.get("store_id"),
                    "at": r.get("at"),
                    "order_ref": r.get("order_ref"),
                }
            raise Refused(reply[1], field="code", details=details)
        # The till hears "redeemed" only once the redemption is on the asked replicas; a repeat
        # of the same order ("existing") waits too (REDIS_WAIT_REPLICAS).
        self.durability.confirm(keys.state(ref.campaign_id))
        coupon = _with_state(coupon, reply[1])
        return {
            "outcome": "redeemed" if reply[0] == "ok" else "existing",
            "redemption": coupon["redemption"],
            "discount_fen": coupon["redemption"]["discount_fen"],
            "coupon": self._till_view(coupon),
        }

    def store_redemptions(
        self, store_id: str, since: float, until: float, limit: int = 500
    ) -> list[dict[str, Any]]:
        """Redemptions at a store between two times, newest first, from every campaign's
        per-store index; `status` is "redeemed", or "voided" when that redemption was undone."""
        cids = self.r.zrange(keys.CAMPAIGNS, 0, -1)
        pipe = self.r.pipeline(transaction=False)
        for cid in cids:
            pipe.zrevrangebyscore(
                keys.store_redemptions(cid, store_id), until, since, withscores=True
            )
        found = []
        for cid, rows in zip(cids, pipe.execute(), strict=True):
            if not rows:
                continue
            entries = [(json.loads(member), at) for member, at in rows]
            seqs = [str(entry["seq"]) for entry, _ in entries]
            docs = self.r.hmget(keys.coupons(cid), seqs)
            states = self.r.hmget(keys.state(cid), seqs)
            for (entry, at), doc, state in zip(entries, docs, states, strict=True):
                coupon = json.loads(doc) if doc else {}
                now = json.loads(state) if state else {}
                current = now.get("redemption") or {}
                live = (
                    now.get("status") == "redeemed"
                    and current.get("order_ref") == entry["order_ref"]
                    and current.get("store_id") == store_id
                    and abs(float(current.get("at") or 0) - at) < 0.01
                )
                coupon_id = f"{cid}-{entry['seq']}"
                found.append(
                    {
                        "coupon_id": coupon_id,
                        "code": self.codec.short_code(coupon_id),
                        "campaign_id": cid,
                        "title": coupon.get("title"),
                        "at": at,
                        "order_ref": entry["order_ref"],
                        "basket_fen": entry["basket_fen"],
                        "discount_fen": entry["discount_fen"],
                        "staff_id": entry["staff_id"],
                        "status": "redeemed" if live else "voided",
                    }
                )
        found.sort(key=lambda item: item["at"], reverse=True)
        return found[:limit]

    def void_redemption(
        self, coupon_id: str | None, order_ref: str | None, actor: Actor, *, code: str | None = None
    ) -> dict[str, Any]:
        """Undo a redemption (a refund) within the void window: the coupon is usable again.

        The coupon is named by its id, or by a code, which goes through the same throttled
        check as at the till (staff learn nothing about a code not redeemed at their store).
        """
        if code is not None:
            ref, coupon = self._scan(code, actor, self._voidable_here)
        else:
            ref = split_coupon_id(coupon_id or "")
            coupon = self._load(ref)
        if coupon["status"] != "redeemed":
            raise Refused("NOT_REDEEMED", field="coupon_id")
        if actor.role == "staff" and coupon["redemption"]["store_id"] != actor.store_id:
            raise Forbidden(
                "staff void only their own store's redemptions",
                code="not_your_store",
                field="coupon_id",
            )
        view = self.campaigns.view(ref.campaign_id)
        now = self.clock.now()
        _, hour = local_day_hour(now, view.tz)
        reply = self.scripts.call(
            "unredeem",
            _redeem_keys(ref.campaign_id, coupon["offer_id"]),
            [
                repr(now),
                ref.seq,
                order_ref or "",
                self.settings.void_window_s,
                f"{actor.role}:{actor.user_id}",
                ref.campaign_id,
                hour,
            ],
        )
        if reply[0] == "no":
            raise Refused(
                reply[1], field="order_ref" if reply[1] == "ORDER_MISMATCH" else "coupon_id"
            )
        self.durability.confirm(keys.state(ref.campaign_id))
        return self.present(_with_state(coupon, reply[1]), owner=False)

    def void(self, coupon_id: str, actor: Actor, reason: str = "") -> dict[str, Any]:
        """Void an unredeemed coupon: it is unusable and its caps are released."""
        ref = split_coupon_id(coupon_id)
        coupon = self._load(ref)
        state = json.loads(self.r.hget(keys.state(ref.campaign_id), ref.seq))
        cid = ref.campaign_id
        reply = self.scripts.call(
            "void",
            [
                keys.meta(cid),
                keys.offer(cid, coupon["offer_id"]),
                keys.per_shopper(cid),
                keys.per_shopper_day(cid, state["day"]),
                keys.per_store_day(cid, state["day"]),
                keys.state(cid),
                keys.expiring(cid),
                keys.ledger(cid),
                keys.stats(cid),
            ],
            [repr(self.clock.now()), ref.seq, f"{actor.role}:{actor.user_id}", cid, reason],
        )
        if reply[0] == "no":
            raise Refused(
                reply[1],
                field="coupon_id",
                details={"status": json.loads(reply[2])["status"]} if len(reply) > 2 else None,
            )
        self.durability.confirm(keys.state(cid))
        return self.present(_with_state(coupon, reply[1]), owner=False)

    # -- export --------------------------------------------------------------------------
    def csv_rows(self, cid: str, *, batch: int = 500) -> tuple[int, Iterator[list[Any]]]:
        """Return how many coupons a campaign issued and their CSV rows (the header first, then
        one row per coupon in issue order, read in batches of `batch`). A coupon past its
        expiry shows as expired, as get() shows it (the sweeper writes that to the ledger)."""
        self.campaigns.get(cid)
        total = int(self.r.hlen(keys.coupons(cid)))

        def rows() -> Iterator[list[Any]]:
            yield list(COUPON_CSV_COLUMNS)
            now = self.clock.now()
            seqs = sorted(int(seq) for seq in self.r.hkeys(keys.coupons(cid)))
            for start in range(0, len(seqs), batch):
                chunk = seqs[start : start + batch]
                pipe = self.r.pipeline(transaction=False)
                pipe.hmget(keys.coupons(cid), chunk)
                pipe.hmget(keys.state(cid), chunk)
                raws, states = pipe.execute()
                for raw, state in zip(raws, states, strict=True):
                    if raw is None or state is None:
                        continue
                    yield _coupon_csv_row(coupon_from(raw, state), now)

        return total, rows()

    # -- expiry --------------------------------------------------------------------------
    def sweep(self, limit: int = 1_000) -> int:
        """Expire every coupon whose time has come, writing ledger entries; return how many."""
        now = self.clock.now()
        cids = self.r.zrange(keys.CAMPAIGNS, 0, -1)
        pipe = self.r.pipeline(transaction=False)
        for cid in cids:
            pipe.zcount(keys.expiring(cid), "-inf", now)
        total = 0
        for cid, due in zip(cids, pipe.execute(), strict=True):
            while due:
                done = self._expire(cid, [], limit=limit)
                total += done
                due = self.r.zcount(keys.expiring(cid), "-inf", now) if done else 0
        return total

    def _expire(self, cid: str, seqs: list[int], limit: int = 1_000) -> int:
        now = self.clock.now()
        try:
            tz = self.campaigns.view(cid).tz
        except Refused:
            return 0
        _, hour = local_day_hour(now, tz)
        return int(
            self.scripts.call(
                "expire",
                [keys.state(cid), keys.expiring(cid), keys.ledger(cid), keys.stats(cid)],
                [repr(now), limit, cid, hour, *seqs],
            )
        )

    # -- helpers -------------------------------------------------------------------------
    def _scan(
        self, code: str, actor: Actor, acts_on: Callable[[dict[str, Any], Actor], bool]
    ) -> tuple[CouponRef, dict[str, Any]]:
        """Verify a scanned/typed code (throttled) and load its coupon: the one path for codes.

        One check at a time per till (or per user without a store) runs under a lock, so the
        sequence "is the limit reached? verify, count a failure" is atomic: parallel guesses
        cannot get more codes checked than the limit allows. A staff member typing a short code
        (a 15-bit MAC, guessable in principle) gets the same answer, INVALID_CODE, counted the
        same, for a wrong MAC, a coupon that does not exist, one they may not act on
        (`acts_on`: another store's offer, a redemption elsewhere) and one whose shopper is
        throttled, so guessing reveals nothing about other stores' and shoppers' coupons.
        """
        hide = actor.role == "staff" and not is_token(code)
        busy = RateLimited(
            "another code is being checked at this till; try again",
            code="too_many_invalid_codes",
            field="code",
            retry_after=1,
        )
        with self.throttle.exclusive(f"coupon-check:{actor.store_id or actor.user_id}", busy=busy):
            for rule, ident in self._limits(actor, None):
                self.throttle.check(rule, ident)
            try:
                ref = self.codec.verify(code)
                try:
                    coupon = self._load(ref, field="code")
                except NotFound:
                    raise no_such_code() from None
                if hide and not acts_on(coupon, actor):
                    raise no_such_code()
                if (
                    hide
                    and self.throttle.remaining(self.rules["shopper"], coupon["shopper_id"]) <= 0
                ):
                    raise no_such_code()
            except InvalidCode:
                self._count_invalid(actor, None)
                raise
        self.throttle.check(self.rules["shopper"], coupon["shopper_id"])
        return ref, coupon

    def _usable_here(self, coupon: dict[str, Any], actor: Actor) -> bool:
        store = self.campaigns.store(actor.store_id or "")
        view = self.campaigns.view(coupon["campaign_id"])
        return store is not None and view.offer_allows(coupon["offer_id"], store)

    @staticmethod
    def _voidable_here(coupon: dict[str, Any], actor: Actor) -> bool:
        redemption = coupon.get("redemption") or {}
        return coupon["status"] == "redeemed" and redemption.get("store_id") == actor.store_id

    def _refusal(
        self, coupon: dict[str, Any], basket_fen: int, actor: Actor, checks_state: bool = True
    ) -> str | None:
        now = self.clock.now()
        if checks_state:
            status = coupon["status"]
            if status == "redeemed":
                return "ALREADY_REDEEMED"
            if status == "voided":
                return "COUPON_VOIDED"
            if status == "expired" or now >= coupon["expires_at"]:
                return "COUPON_EXPIRED"
            if now < coupon["valid_from"]:
                return "NOT_YET_VALID"
        if not self._usable_here(coupon, actor):
            return "WRONG_STORE"
        if basket_fen < coupon["min_spend_fen"]:
            return "MIN_SPEND_NOT_MET"
        return None

    def _till_view(self, coupon: dict[str, Any]) -> dict[str, Any]:
        """What the till sees: the terms and status, not the shopper."""
        hidden = {"shopper_id", "source"}
        out = {k: v for k, v in coupon.items() if k not in hidden}
        out["code"] = self.codec.short_code(coupon["id"])
        return out

    def _limits(self, actor: Actor, shopper_id: str | None) -> list[tuple[Rule, str]]:
        found = [(self.rules["staff"], actor.user_id)]
        if actor.store_id:
            found.append((self.rules["till"], actor.store_id))
        if shopper_id:
            found.append((self.rules["shopper"], shopper_id))
        return found

    def _count_invalid(self, actor: Actor, shopper_id: str | None) -> None:
        """Count an invalid or suspicious code against the staff member, till and shopper."""
        for rule, ident in self._limits(actor, shopper_id):
            try:
                self.throttle.hit(rule, ident)
            except RateLimited:
                pass  # already full: the next check refuses


def _redeem_keys(cid: str, oid: str) -> list[str]:
    return [
        keys.meta(cid),
        keys.offer(cid, oid),
        keys.state(cid),
        keys.expiring(cid),
        keys.ledger(cid),
        keys.stats(cid),
    ]


def _coupon_csv_row(coupon: dict[str, Any], now: float) -> list[Any]:
    status = coupon["status"]
    if status == "issued" and now >= coupon["expires_at"]:
        status = "expired"
    redemption = coupon.get("redemption") or {}
    source = coupon.get("source")
    cells = {
        **coupon,
        "status": status,
        "redeemed_at": redemption.get("at"),
        "redeemed_store_id": redemption.get("store_id"),
        "order_ref": redemption.get("order_ref"),
        "basket_fen": redemption.get("basket_fen"),
        "discount_fen": redemption.get("discount_fen"),
        "source": json.dumps(source, separators=(",", ":"), sort_keys=True) if source else "",
    }
    return [cells.get(column) for column in COUPON_CSV_COLUMNS]


def _with_state(coupon: dict[str, Any], raw_state: str) -> dict[str, Any]:
    fixed = {
        k: v
        for k, v in coupon.items()
        if k
        not in (
            "status",
            "redemption",
            "expired_at",
            "voided_at",
            "void_reason",
            "voided_redemptions",
            "valid_from",
            "expires_at",
        )
    }
    return coupon_from(json.dumps(fixed), raw_state)


def _parse_cursor(cursor: str) -> tuple[float, int, int]:
    try:
        score, _, ident = cursor.partition(":")
        ref = split_coupon_id(ident, "cursor")
        return float(score), int(ref.campaign_id), ref.seq
    except (ValueError, NotFound):
        from core.errors import ValidationFailed

        raise ValidationFailed(
            "not a cursor from this list", code="invalid_cursor", field="cursor"
        ) from None


def _message(reason: str) -> str:
    from .campaigns import REASONS

    return REASONS.get(reason, reason)
