"""What the host puts on screen: pinned products (at most three) and announcements."""

from __future__ import annotations

import json
from typing import Any

import redis

from core.errors import DomainError, NotFound, ValidationFailed
from core.scripts import LuaScripts

from . import keys
from .streams import load_product

MAX_PINS = 3
MAX_ANNOUNCEMENT = 280

# KEYS: pins list, products hash      ARGV: product id, max pins
# Pinning twice is a no-op; a fourth pin is refused rather than silently unpinning one.
PIN = """
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return {'no', 'PRODUCT_NOT_FOUND'} end
for _, pid in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  if pid == ARGV[1] then return {'ok'} end
end
if redis.call('LLEN', KEYS[1]) >= tonumber(ARGV[2]) then return {'no', 'TOO_MANY_PINS'} end
redis.call('RPUSH', KEYS[1], ARGV[1])
return {'ok'}
"""


def pins_key(sid: str) -> str:
    """List: pinned product ids, in pinning order."""
    return f"{keys.stream(sid)}:pins"


def announcement_key(sid: str) -> str:
    """String: the latest announcement (JSON)."""
    return f"{keys.stream(sid)}:announcement"


class Stage:
    """Pins and announcements of a stream."""

    def __init__(self, r: redis.Redis, clock) -> None:
        self.r = r
        self.clock = clock
        self.scripts = LuaScripts(r, {"pin": PIN})

    def pin(self, sid: str, product_id: str) -> list[dict[str, Any]]:
        """Pin a product (at most three); return the pinned products."""
        reply = self.scripts.call(
            "pin", [pins_key(sid), keys.products(sid)], [product_id, MAX_PINS]
        )
        if reply[0] != "ok":
            if reply[1] == "PRODUCT_NOT_FOUND":
                raise NotFound(
                    "no such product in this stream", code="PRODUCT_NOT_FOUND", field="product_id"
                )
            raise DomainError(
                f"at most {MAX_PINS} products can be pinned",
                code="TOO_MANY_PINS",
                field="product_id",
                status=409,
            )
        return self.pinned(sid)

    def unpin(self, sid: str, product_id: str) -> list[dict[str, Any]]:
        """Unpin a product; return the pinned products."""
        self.r.lrem(pins_key(sid), 0, product_id)
        return self.pinned(sid)

    def pinned(self, sid: str) -> list[dict[str, Any]]:
        """Return the pinned products, in pinning order."""
        ids = self.r.lrange(pins_key(sid), 0, -1)
        if not ids:
            return []
        raw = self.r.hmget(keys.products(sid), ids)
        return [load_product(p) for p in raw if p is not None]

    def announce(self, sid: str, text: str) -> dict[str, Any]:
        """Record an announcement and return it."""
        text = (text or "").strip()
        if not 1 <= len(text) <= MAX_ANNOUNCEMENT:
            raise ValidationFailed(
                f"an announcement is 1 to {MAX_ANNOUNCEMENT} characters", field="text"
            )
        record = {"text": text, "at": self.clock.now()}
        self.r.set(announcement_key(sid), json.dumps(record, ensure_ascii=False))
        return record

    def announcement(self, sid: str) -> dict[str, Any] | None:
        """Return the latest announcement, if any."""
        raw = self.r.get(announcement_key(sid))
        return json.loads(raw) if raw else None
