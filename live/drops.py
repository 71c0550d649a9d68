"""Flash coupon drops: the first N claims win, exactly N across every process, one per viewer.

A drop's counter, its winners and its window are decided by one Lua script on the stream's
slot; the winner's coupon is then issued through promotions (channel `live_drop`, idempotent
by drop and viewer), so a repeated claim returns the same coupon and never a second one.
"""

from __future__ import annotations

import json
from typing import Any

import redis

from core.errors import DomainError, NotFound, ValidationFailed
from core.scripts import LuaScripts

from . import keys
from .events import LiveEventSink, NoLiveEvents

MIN_WINDOW_S, MAX_WINDOW_S = 10, 300
MAX_QUANTITY = 100_000

# KEYS: drop hash, winners hash, active-drop key, grants     ARGV: drop id, now, viewer
# A grant taken back stops a running drop too (a winner's repeated claim still gets its coupon).
CLAIM = """
local d = redis.call('HMGET', KEYS[1], 'quantity', 'claimed', 'ends_at', 'status', 'campaign')
if not d[1] then return {'no', 'DROP_NOT_FOUND'} end
local prev = redis.call('HGET', KEYS[2], ARGV[3])
if prev then return {'dup', prev, tonumber(d[1]) - tonumber(d[2])} end
if d[5] and redis.call('SISMEMBER', KEYS[4], d[5]) == 0 then
  return {'no', 'CAMPAIGN_NOT_GRANTED'}
end
local claimed = tonumber(d[2])
if claimed >= tonumber(d[1]) then return {'no', 'SOLD_OUT'} end
if d[4] ~= 'open' or tonumber(ARGV[2]) >= tonumber(d[3]) then return {'no', 'DROP_CLOSED'} end
claimed = claimed + 1
redis.call('HSET', KEYS[1], 'claimed', claimed)
redis.call('HSET', KEYS[2], ARGV[3], claimed)
if claimed == tonumber(d[1]) then
  redis.call('HSET', KEYS[1], 'status', 'sold_out', 'sold_out_at', ARGV[2])
  local active = redis.call('GET', KEYS[3])
  if active and string.sub(active, 1, #ARGV[1] + 1) == ARGV[1] .. '|' then
    redis.call('DEL', KEYS[3])
  end
end
return {'won', claimed, tonumber(d[1]) - claimed}
"""

# KEYS: drop hash, winners hash, active-drop key     ARGV: drop id, viewer
# A winner whose coupon promotions refused (its budget ran out, say) gives the slot back.
RELEASE = """
if redis.call('HDEL', KEYS[2], ARGV[2]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 'claimed', -1)
if redis.call('HGET', KEYS[1], 'status') == 'sold_out' then
  redis.call('HSET', KEYS[1], 'status', 'open')
end
return 1
"""

# KEYS: drop hash, active-drop key, stream meta, grants      ARGV: drop id, JSON doc, quantity,
#       starts, ends, campaign id
# The active key holds '<drop id>|<ends at>', so one running drop is checked without a key
# the script did not declare. The campaign must have granted the stream its offers.
START = """
if redis.call('SISMEMBER', KEYS[4], ARGV[6]) == 0 then return {'no', 'CAMPAIGN_NOT_GRANTED'} end
local active = redis.call('GET', KEYS[2])
if active then
  local sep = string.find(active, '|', 1, true)
  if tonumber(string.sub(active, sep + 1)) > tonumber(ARGV[4]) then
    return {'no', 'DROP_ALREADY_ACTIVE', string.sub(active, 1, sep - 1)}
  end
end
if redis.call('HGET', KEYS[3], 'status') ~= 'live' then return {'no', 'STREAM_NOT_LIVE'} end
redis.call('HSET', KEYS[1], 'doc', ARGV[2], 'quantity', ARGV[3], 'claimed', 0,
           'starts_at', ARGV[4], 'ends_at', ARGV[5], 'status', 'open', 'campaign', ARGV[6])
redis.call('SET', KEYS[2], ARGV[1] .. '|' .. ARGV[5])
return {'ok'}
"""


NOT_GRANTED = "the campaign has not granted this stream its offers"


class DropRefused(DomainError):
    """A drop or claim refused for a stable reason (the code)."""

    status = 409


def drop_key(sid: str, did: str) -> str:
    """Hash: one drop's offer, quantity, claimed count, window and status."""
    return f"{keys.stream(sid)}:drop:{did}"


def winners_key(sid: str, did: str) -> str:
    """Hash: viewer -> claim number (1..N) of one drop."""
    return f"{keys.stream(sid)}:drop:{did}:winners"


def active_key(sid: str) -> str:
    """String: '<drop id>|<ends at>' of the stream's current drop."""
    return f"{keys.stream(sid)}:drop:active"


class Drops:
    """Start drops on a live stream and take claims, exactly N winners."""

    def __init__(
        self, r: redis.Redis, clock, promotions, events: LiveEventSink | None = None
    ) -> None:
        self.r = r
        self.events = events or NoLiveEvents()
        self.clock = clock
        self.promotions = promotions
        self.scripts = LuaScripts(r, {"claim": CLAIM, "release": RELEASE, "start": START})

    def start(
        self, stream: dict[str, Any], offer_id: str, quantity: int, window_s: int
    ) -> dict[str, Any]:
        """Start a drop of an offer of the stream's campaign on a live stream."""
        sid = stream["id"]
        if stream.get("campaign_id") is None:
            raise ValidationFailed(
                "the stream has no campaign to drop offers of", code="no_campaign", field="offer_id"
            )
        offer = self.promotions.campaigns.get_offer(stream["campaign_id"], offer_id)
        if "live_drop" not in offer["channels"]:
            raise ValidationFailed(
                "the offer cannot be issued by live drops",
                code="offer_not_for_drops",
                field="offer_id",
            )
        if not 1 <= quantity <= MAX_QUANTITY:
            raise ValidationFailed(f"quantity is 1 to {MAX_QUANTITY}", field="quantity")
        if not MIN_WINDOW_S <= window_s <= MAX_WINDOW_S:
            raise ValidationFailed(
                f"the claim window is {MIN_WINDOW_S} to {MAX_WINDOW_S} s", field="window_s"
            )
        did = f"d{self.r.hincrby(keys.meta(sid), 'drop_seq', 1)}"
        now = self.clock.now()
        doc = {
            "id": did,
            "stream_id": sid,
            "campaign_id": stream["campaign_id"],
            "offer_id": offer_id,
            "title": offer["name"],
            "quantity": quantity,
            "window_s": window_s,
            "starts_at": now,
            "ends_at": now + window_s,
        }
        reply = self.scripts.call(
            "start",
            [drop_key(sid, did), active_key(sid), keys.meta(sid), keys.grants(sid)],
            [
                did,
                json.dumps(doc),
                quantity,
                repr(now),
                repr(now + window_s),
                stream["campaign_id"],
            ],
        )
        if reply[0] != "ok":
            if reply[1] == "CAMPAIGN_NOT_GRANTED":
                raise DropRefused(NOT_GRANTED, code=reply[1], field="offer_id", status=403)
            raise DropRefused(
                {
                    "DROP_ALREADY_ACTIVE": "a drop is already running",
                    "STREAM_NOT_LIVE": "drops happen while the stream is live",
                }[reply[1]],
                code=reply[1],
                field="stream_id",
            )
        self.events.drop_started(sid, did, now + window_s)
        return self.get(sid, did)

    def get(self, sid: str, did: str) -> dict[str, Any]:
        """Return a drop with its remaining count and status (closed once past its end)."""
        raw = self.r.hgetall(drop_key(sid, did))
        if not raw:
            raise NotFound("no such drop", code="drop_not_found", field="drop_id")
        doc = json.loads(raw["doc"])
        claimed = int(raw["claimed"])
        status = raw["status"]
        if status == "open" and self.clock.now() >= float(raw["ends_at"]):
            status = "closed"
        doc.update(claimed=claimed, remaining=doc["quantity"] - claimed, status=status)
        return doc

    def active(self, sid: str) -> dict[str, Any] | None:
        """Return the stream's running drop, if any (for the late joiner's state)."""
        value = self.r.get(active_key(sid))
        if value is None:
            return None
        drop = self.get(sid, value.partition("|")[0])
        return drop if drop["status"] == "open" else None

    def claim(self, sid: str, did: str, viewer_id: str) -> dict[str, Any]:
        """Claim a drop: the first N viewers win a coupon, once each; others hear SOLD_OUT."""
        now = self.clock.now()
        dkeys = [drop_key(sid, did), winners_key(sid, did), active_key(sid)]
        reply = self.scripts.call("claim", [*dkeys, keys.grants(sid)], [did, repr(now), viewer_id])
        if reply[0] == "no":
            messages = {
                "DROP_NOT_FOUND": "no such drop",
                "DROP_CLOSED": "the drop has ended",
                "SOLD_OUT": "all the coupons of this drop are gone",
                "CAMPAIGN_NOT_GRANTED": NOT_GRANTED,
            }
            raise DropRefused(
                messages[reply[1]],
                code=reply[1],
                field="drop_id",
                status={"DROP_NOT_FOUND": 404, "CAMPAIGN_NOT_GRANTED": 403}.get(reply[1]),
            )
        drop = json.loads(self.r.hget(drop_key(sid, did), "doc"))
        claim_id = f"drop:{sid}:{did}:{viewer_id}"
        issued = self.promotions.issue(
            drop["campaign_id"],
            drop["offer_id"],
            viewer_id,
            channel="live_drop",
            idempotency_key=claim_id,
            actor="live",
            source={"stream_id": sid, "drop_id": did},
        )
        if not issued.ok:
            self.scripts.call("release", dkeys, [did, viewer_id])
            raise DropRefused("the coupon could not be issued", code=issued.reason, field="drop_id")
        # The win, like its coupon (confirmed inside `issue`), is acknowledged only once on the
        # asked replicas: a lost win would let another viewer take its place (REDIS_WAIT_REPLICAS).
        self.promotions.durability.confirm(dkeys[0])
        coupon = self.promotions.coupons.present(issued.coupon, owner=True)
        remaining = int(reply[2])
        if reply[0] == "won" and remaining <= 0:
            self.events.drop_sold_out(sid, did)
        return {
            "outcome": "won" if reply[0] == "won" else "already_won",
            "claim": int(reply[1]),
            "remaining": max(remaining, 0),
            "sold_out": remaining <= 0,
            "coupon": coupon,
        }

    def report(self, sid: str) -> list[dict[str, Any]]:
        """Return every drop of a stream with its winners (for the post-stream report)."""
        count = int(self.r.hget(keys.meta(sid), "drop_seq") or 0)
        out = []
        for n in range(1, count + 1):
            did = f"d{n}"
            try:
                drop = self.get(sid, did)
            except NotFound:
                continue
            drop["winners"] = len(self.r.hkeys(winners_key(sid, did)))
            out.append(drop)
        return out
