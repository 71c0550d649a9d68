"""Turn geofence events into visits and coupons: a consumer group on the geo event stream.

Delivery is at-least-once: an entry is acknowledged only after it was handled, and an entry a
crashed consumer left pending is claimed (XAUTOCLAIM) and finished by another one. Handling is
idempotent: a visit is counted once per event id, and a visit coupon's idempotency key is
(offer, shopper, store, campaign day), so a replay returns the coupon issued the first time.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Callable
from typing import Any

import redis

from geo import keys as geo_keys

from . import keys
from .campaigns import Campaigns, local_day_hour
from .issuance import Issuer, IssueResult

log = logging.getLogger(__name__)
VISIT_KINDS = ("enter", "dwell")
SEEN_TTL_S = 3 * 86_400


def consumer_name() -> str:
    """Return a name unique to this process (host and pid)."""
    return f"{socket.gethostname()}-{os.getpid()}"


class VisitConsumer:
    """Read geo:events in the `promotions` group; count visits and issue visit coupons."""

    def __init__(
        self,
        r: redis.Redis,
        campaigns: Campaigns,
        issuer: Issuer,
        scripts,
        name: str | None = None,
        *,
        batch: int = 100,
        on_issue: Callable[[IssueResult], None] | None = None,
    ) -> None:
        self.r = r
        self.campaigns = campaigns
        self.issuer = issuer
        self.scripts = scripts
        self.name = name or consumer_name()
        self.batch = batch
        self.on_issue = on_issue
        self._group_ready = False

    def ensure_group(self) -> None:
        """Create the consumer group (from the stream's start) if it does not exist."""
        try:
            self.r.xgroup_create(geo_keys.EVENTS, keys.CONSUMER_GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def run_once(self, block_ms: int | None = None) -> int:
        """Read and handle one batch of new events; return how many were handled."""
        if not self._group_ready:
            self.ensure_group()
        try:
            reply = self.r.xreadgroup(
                keys.CONSUMER_GROUP,
                self.name,
                {geo_keys.EVENTS: ">"},
                count=self.batch,
                block=block_ms,
            )
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self._group_ready = False  # the stream was deleted: recreate the group next time
            return 0
        entries = reply[0][1] if reply else []
        return self._handle_all(entries)

    def recover(self, min_idle_ms: int = 60_000) -> int:
        """Claim entries other consumers left pending longer than min_idle_ms; handle them."""
        if not self._group_ready:
            self.ensure_group()
        handled = 0
        start = "0-0"
        while True:
            reply = self.r.xautoclaim(
                geo_keys.EVENTS,
                keys.CONSUMER_GROUP,
                self.name,
                min_idle_time=min_idle_ms,
                start_id=start,
                count=self.batch,
            )
            start, entries = reply[0], reply[1]
            # Entries deleted from the stream while pending come back as None: drop them.
            handled += self._handle_all([e for e in entries if e and e[1] is not None])
            if start in ("0-0", b"0-0"):
                return handled

    def _handle_all(self, entries: list) -> int:
        done = []
        # One look at the campaigns per batch, not per event (it asks Redis twice).
        views = self.campaigns.active_views() if entries else []
        for entry_id, fields in entries:
            try:
                self.handle(fields, views)
            except redis.RedisError:
                raise  # not acknowledged: this or another consumer retries it
            except Exception:
                # A malformed entry would fail forever; log it and move on.
                log.exception("promotions: cannot handle geo event %s", entry_id)
            done.append(entry_id)
        if done:
            self.r.xack(geo_keys.EVENTS, keys.CONSUMER_GROUP, *done)
        return len(done)

    def handle(self, fields: dict[str, str], views: list | None = None) -> list[IssueResult]:
        """Handle one stream entry: count the visit and issue what the campaigns' rules say."""
        event = json.loads(fields["event"])
        if event.get("kind") not in VISIT_KINDS:
            return []
        store = self.campaigns.store(event["store_id"])
        if store is None:
            return []
        results = []
        at = float(event["at"])
        if views is None:
            views = self.campaigns.active_views()
        targeting = [
            view
            for view in views
            if view.targets(store) and view.doc["starts_at"] <= at < view.doc["ends_at"]
        ]
        # Only live campaigns count visits and issue (a draft or paused one does neither).
        live = self.campaigns.live_ids([view.id for view in targeting])
        for view in targeting:
            if view.id not in live:
                continue
            day, hour = local_day_hour(at, view.tz)
            self.scripts.call(
                "record_visit",
                [
                    keys.seen_visits(view.id, day),
                    keys.stats(view.id),
                    keys.visitors(view.id),
                ],
                [
                    event["id"],
                    f"{event['kind']}||{store['id']}|{hour}|",
                    event["shopper_id"],
                    SEEN_TTL_S,
                ],
            )
            for oid, offer in view.offers.items():
                if "visit" not in offer["channels"] or offer["visit_trigger"] != event["kind"]:
                    continue
                result = self.issuer.issue(
                    view.id,
                    oid,
                    event["shopper_id"],
                    channel="visit",
                    idempotency_key=f"visit:{oid}:{event['shopper_id']}:{store['id']}:{day}",
                    store_id=store["id"],
                    actor="visit",
                    trust=int(event.get("trust", 0)),
                    source={"event_id": event["id"], "kind": event["kind"]},
                )
                results.append(result)
                if self.on_issue is not None:
                    self.on_issue(result)
        return results

    def pending(self) -> dict[str, Any]:
        """Return the group's pending summary (for health checks and tests)."""
        info = self.r.xpending(geo_keys.EVENTS, keys.CONSUMER_GROUP)
        return {
            "pending": info["pending"],
            "consumers": {c["name"]: c["pending"] for c in info["consumers"]},
        }
