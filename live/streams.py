"""Streams and their products: schedule, change, go live, end; product images."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from core.errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed
from core.scripts import LuaScripts

from . import keys
from .events import LiveEventSink, NoLiveEvents
from .models import ProductIn, StreamIn, StreamPatch

MAX_PRODUCTS = 50
MANAGERS = ("marketer", "admin")

# KEYS: meta   ARGV: target status, now
# Only scheduled → live → ended (and scheduled → ended, a cancellation); the same status
# again is a no-op, so a host's retried "start" is harmless.
TRANSITION = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'no', 'NOT_FOUND'} end
if status == ARGV[1] then return {'ok', status, 0} end
local allowed = {scheduled = {live = 1, ended = 1}, live = {ended = 1}, ended = {}}
if not allowed[status][ARGV[1]] then return {'no', 'INVALID_TRANSITION', status} end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'status_at', ARGV[2], ARGV[1] .. '_at', ARGV[2])
return {'ok', ARGV[1], 1}
"""


@dataclass(frozen=True)
class Caller:
    """Who asks: an account id and its role."""

    user_id: str
    role: str


class Streams:
    """Stream records on Redis, one hash tag per stream."""

    def __init__(
        self,
        r: redis.Redis,
        clock,
        promotions,
        role_of: Callable[[str], str | None],
        events: LiveEventSink | None = None,
    ) -> None:
        self.r = r
        self.events = events or NoLiveEvents()
        self.clock = clock
        self.promotions = promotions
        self.role_of = role_of
        self.scripts = LuaScripts(r, {"transition": TRANSITION})

    # -- streams -------------------------------------------------------------------------
    def create(self, data: StreamIn, caller: Caller) -> dict[str, Any]:
        """Schedule a stream (a host may only schedule streams they host)."""
        if caller.role == "host" and caller.user_id not in data.hosts:
            raise Forbidden(
                "a host schedules only streams they host", code="not_your_stream", field="hosts"
            )
        self._check_hosts(data.hosts)
        if data.campaign_id is not None:
            self.promotions.campaigns.get(data.campaign_id)
            if caller.role not in MANAGERS:  # a stream not yet made has no grant
                raise _not_granted()
        sid = str(self.r.incr(keys.SEQ))
        now = self.clock.now()
        doc = data.model_dump()
        actor = f"{caller.role}:{caller.user_id}"
        doc.update(id=sid, created_at=now, created_by=actor)
        if data.campaign_id is not None:  # a marketer attaching a campaign grants it
            self.promotions.campaigns.record_grant(data.campaign_id, sid, actor, granted=True)
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(
            keys.meta(sid),
            mapping={
                "doc": json.dumps(doc),
                "status": "scheduled",
                "status_at": now,
                "product_seq": 0,
            },
        )
        if data.campaign_id is not None:
            pipe.sadd(keys.grants(sid), data.campaign_id)
        pipe.execute()
        self.r.zadd(keys.STREAMS, {sid: data.starts_at})
        return self.get(sid)

    def get(self, sid: str) -> dict[str, Any]:
        """Return a stream with its status and products (NotFound if missing)."""
        pipe = self.r.pipeline(transaction=False)
        pipe.hgetall(keys.meta(sid))
        pipe.hgetall(keys.products(sid))
        meta, products = pipe.execute()
        if not meta:
            raise NotFound("no such stream", code="stream_not_found", field="stream_id")
        return _stream_dict(meta, products)

    def list(
        self, *, status: str | None = None, cursor: str | None = None, limit: int = 20
    ) -> dict[str, Any]:
        """Page through streams by scheduled start (soonest first), optionally by status."""
        start = f"({cursor}" if cursor else "-inf"
        items: list[dict[str, Any]] = []
        more = False
        last_score = None
        while not more:
            found = self.r.zrangebyscore(
                keys.STREAMS, start, "+inf", start=0, num=limit + 1, withscores=True
            )
            if not found:
                break
            pipe = self.r.pipeline(transaction=False)
            for sid, _ in found:
                pipe.hgetall(keys.meta(sid))
                pipe.hgetall(keys.products(sid))
            replies = pipe.execute()
            for n, (_, score) in enumerate(found):
                meta, products = replies[2 * n], replies[2 * n + 1]
                if not meta or (status and meta["status"] != status):
                    continue
                if len(items) == limit:
                    more = True
                    break
                items.append(_stream_dict(meta, products))
                last_score = score
            if len(found) <= limit:
                break
            start = f"({found[-1][1]}"
        # Streams sharing a start time would be skipped by a score cursor: page by
        # (start, id) instead when that ever matters; starts are seconds apart in practice.
        return {"items": items, "next_cursor": repr(last_score) if more else None}

    def update(self, sid: str, patch: StreamPatch, caller: Caller) -> dict[str, Any]:
        """Change a scheduled stream (null leaves a field as is); its hosts also while live.

        A host taken off a stream loses its console at once: every host event checks the
        current hosts, and the caller disconnects `stale_consoles` after the change.
        """
        stream = self.managed(sid, caller)
        changes = {k: v for k, v in patch.model_dump(exclude_unset=True).items() if v is not None}
        hosts_only = set(changes) <= {"hosts"}
        if stream["status"] != "scheduled" and not (hosts_only and stream["status"] == "live"):
            raise Conflict(
                "only a scheduled stream can change (a live one: its hosts)",
                code="STREAM_NOT_SCHEDULED",
                field="stream_id",
            )
        if "hosts" in changes:
            self._check_hosts(changes["hosts"])
            if caller.role == "host" and caller.user_id not in changes["hosts"]:
                raise Forbidden(
                    "a host cannot remove themselves", code="not_your_stream", field="hosts"
                )
        cid = changes.get("campaign_id")
        if cid is not None and cid != stream["campaign_id"]:
            self.promotions.campaigns.get(cid)
            if any(p.get("offer_id") for p in stream["products"]):
                raise Conflict(
                    "products link offers of the current campaign: remove them first",
                    code="campaign_in_use",
                    field="campaign_id",
                )
            if caller.role in MANAGERS:
                self.grant(sid, cid, f"{caller.role}:{caller.user_id}")
            elif not self.r.sismember(keys.grants(sid), cid):
                raise _not_granted()
        raw = json.loads(self.r.hget(keys.meta(sid), "doc"))
        raw.update(changes)
        pipe = self.r.pipeline(transaction=False)
        pipe.hset(keys.meta(sid), "doc", json.dumps(raw))
        pipe.zadd(keys.STREAMS, {sid: raw["starts_at"]})
        pipe.execute()
        return self.get(sid)

    def transition(self, sid: str, to: str, caller: Caller) -> dict[str, Any]:
        """Go live or end (hosts of the stream, marketers, admins)."""
        return self.move(sid, to, caller)[0]

    def move(self, sid: str, to: str, caller: Caller) -> tuple[dict[str, Any], bool]:
        """Go live or end as `transition` does; also tell whether the status changed (False
        for a retried move to the status the stream already has)."""
        self.managed(sid, caller)
        reply = self.scripts.call("transition", [keys.meta(sid)], [to, repr(self.clock.now())])
        if reply[0] != "ok":
            raise DomainError(
                f"a {reply[2]} stream cannot become {to}",
                code="INVALID_TRANSITION",
                field="to",
                status=409,
                details={"status": reply[2]},
            )
        # An index beside the record (another slot): the script decided, this only mirrors it.
        if reply[1] == "live":
            self.r.sadd(keys.LIVE, sid)
        else:
            self.r.srem(keys.LIVE, sid)
        changed = bool(int(reply[2]))
        if changed and reply[1] == "ended":
            self.events.stream_ended(sid)
        return self.get(sid), changed

    def status(self, sid: str) -> str | None:
        """Return a stream's status now (one read; None for an unknown stream)."""
        return self.r.hget(keys.meta(sid), "status")

    def live_ids(self) -> list[str]:
        """Return the ids of the streams that are live now."""
        return sorted(self.r.smembers(keys.LIVE), key=int)

    # -- campaign grants ----------------------------------------------------------------
    def grant(self, sid: str, cid: str, actor: str) -> dict[str, Any]:
        """Let a stream drop a campaign's offers (marketers decide; granting again is a no-op).

        The campaign's record and ledger entry are written first, then the grant the drops
        check: a failure in between leaves the stream without the grant, never the reverse.
        """
        self.get(sid)
        record = self.promotions.campaigns.record_grant(cid, sid, actor, granted=True)
        self.r.sadd(keys.grants(sid), cid)
        return record

    def revoke(self, sid: str, cid: str, actor: str) -> None:
        """Take a grant back: from now on no drop of the campaign starts or is claimed here."""
        self.get(sid)
        self.promotions.campaigns.get(cid)
        self.r.srem(keys.grants(sid), cid)  # the check first, then the campaign's record
        self.promotions.campaigns.record_grant(cid, sid, actor, granted=False)

    # -- host consoles ------------------------------------------------------------------
    def open_console(self, sid: str, console_id: str, user_id: str) -> dict[str, Any]:
        """Admit a host's console to a stream (Forbidden unless one of its hosts).

        The console is registered before the hosts are read, so a change of hosts that lands
        meanwhile finds it among `stale_consoles`.
        """
        self.r.hset(keys.consoles(sid), console_id, user_id)
        try:
            stream = self.get(sid)
            self._require_host(stream, user_id)
        except DomainError:
            self.close_console(sid, console_id)
            raise
        return stream

    def close_console(self, sid: str, console_id: str) -> None:
        """Forget a closed console."""
        self.r.hdel(keys.consoles(sid), console_id)

    def hosted(self, sid: str, user_id: str) -> dict[str, Any]:
        """Return the stream if the user is one of its hosts now (the check of every host
        event: one read, which the event may use for the stream's data)."""
        stream = self.get(sid)
        self._require_host(stream, user_id)
        return stream

    def stale_consoles(self, sid: str) -> list[str]:
        """Return the open consoles of accounts that are no longer hosts of the stream."""
        pipe = self.r.pipeline(transaction=False)
        pipe.hget(keys.meta(sid), "doc")
        pipe.hgetall(keys.consoles(sid))
        doc, consoles = pipe.execute()
        hosts = set(json.loads(doc)["hosts"]) if doc else set()
        return sorted(cid for cid, uid in consoles.items() if uid not in hosts)

    @staticmethod
    def _require_host(stream: dict[str, Any], user_id: str) -> None:
        if user_id not in stream["hosts"]:
            raise Forbidden(
                "only this stream's hosts may do this", code="not_your_stream", field="stream_id"
            )

    def managed(self, sid: str, caller: Caller) -> dict[str, Any]:
        """Return the stream if the caller may manage it (its hosts, marketers, admins)."""
        stream = self.get(sid)
        if caller.role not in MANAGERS and caller.user_id not in stream["hosts"]:
            raise Forbidden(
                "hosts manage only their own streams", code="not_your_stream", field="stream_id"
            )
        return stream

    def _check_hosts(self, hosts: list[str]) -> None:
        for i, uid in enumerate(hosts):
            if self.role_of(uid) != "host":
                raise ValidationFailed("not a host account", code="not_a_host", field=f"hosts[{i}]")

    # -- products ------------------------------------------------------------------------
    def add_product(self, sid: str, data: ProductIn, caller: Caller, image=None) -> dict[str, Any]:
        """Add a product (with its processed image, if any) to a stream not yet ended."""
        stream = self.managed(sid, caller)
        if stream["status"] == "ended":
            raise Conflict(
                "an ended stream takes no products", code="STREAM_ENDED", field="stream_id"
            )
        if len(stream["products"]) >= MAX_PRODUCTS:
            raise Conflict(
                f"a stream has at most {MAX_PRODUCTS} products",
                code="too_many_products",
                field="stream_id",
            )
        if data.offer_id is not None:
            if stream["campaign_id"] is None:
                raise ValidationFailed(
                    "link the stream to a campaign before linking offers",
                    code="no_campaign",
                    field="offer_id",
                )
            self.promotions.campaigns.get_offer(stream["campaign_id"], data.offer_id)
        pid = f"p{self.r.hincrby(keys.meta(sid), 'product_seq', 1)}"
        product = data.model_dump()
        product.update(id=pid, stream_id=sid, added_at=self.clock.now(), image=None, sold_out=False)
        pipe = self.r.pipeline(transaction=True)
        if image is not None:
            product["image"] = {
                "width": image.width,
                "height": image.height,
                "thumb_width": image.thumb_width,
                "thumb_height": image.thumb_height,
                "etag": image.sha256[:20],
            }
            pipe.hset(
                keys.images(sid),
                mapping={
                    f"{pid}:image": base64.b64encode(image.image).decode(),
                    f"{pid}:thumb": base64.b64encode(image.thumb).decode(),
                },
            )
        pipe.hset(keys.products(sid), pid, json.dumps(product))
        pipe.execute()
        return product

    def set_sold_out(self, sid: str, pid: str, sold_out: bool) -> dict[str, Any]:
        """Mark a product sold out, or back in stock; return the product.

        One optimistic transaction on the stream's products hash (WATCH … MULTI/EXEC, retried
        when another write lands in between): a product removed meanwhile is not written back,
        and a concurrent change of another product is not overwritten.
        """
        key = keys.products(sid)
        with self.r.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.hget(key, pid)
                    if raw is None:
                        raise NotFound(
                            "no such product in this stream",
                            code="PRODUCT_NOT_FOUND",
                            field="product_id",
                        )
                    product = load_product(raw)
                    product["sold_out"] = bool(sold_out)
                    pipe.multi()
                    pipe.hset(key, pid, json.dumps(product))
                    pipe.execute()
                    return product
                except redis.WatchError:
                    continue

    def remove_product(self, sid: str, pid: str, caller: Caller) -> None:
        """Remove a product and its images."""
        self.managed(sid, caller)
        pipe = self.r.pipeline(transaction=True)
        pipe.hdel(keys.products(sid), pid)
        pipe.hdel(keys.images(sid), f"{pid}:image", f"{pid}:thumb")
        removed, _ = pipe.execute()
        if not removed:
            raise NotFound("no such product", code="product_not_found", field="product_id")

    def image(self, sid: str, pid: str, kind: str) -> tuple[bytes, str]:
        """Return a product's JPEG ('image' or 'thumb') and its ETag."""
        pipe = self.r.pipeline(transaction=False)
        pipe.hget(keys.products(sid), pid)
        pipe.hget(keys.images(sid), f"{pid}:{kind}")
        raw, data = pipe.execute()
        if raw is None or data is None:
            raise NotFound("no such product image", code="image_not_found", field="product_id")
        product = json.loads(raw)
        return base64.b64decode(data), f"{product['image']['etag']}-{kind}"


def _not_granted() -> Forbidden:
    return Forbidden(
        "the campaign has not granted this stream its offers (a marketer grants "
        "it: PUT /api/campaigns/{id}/grants/{stream_id})",
        code="CAMPAIGN_NOT_GRANTED",
        field="campaign_id",
    )


def load_product(raw: str) -> dict[str, Any]:
    """Read a stored product (products stored before sold-out marks existed are in stock)."""
    product = json.loads(raw)
    product.setdefault("sold_out", False)
    return product


def _stream_dict(meta: dict[str, str], products: dict[str, str]) -> dict[str, Any]:
    doc = json.loads(meta["doc"])
    doc["status"] = meta["status"]
    doc["status_at"] = float(meta["status_at"])
    for name in ("live_at", "ended_at"):
        doc[name] = float(meta[name]) if name in meta else None
    items = [load_product(p) for p in products.values()]
    doc["products"] = sorted(items, key=lambda p: int(p["id"][1:]))
    return doc
