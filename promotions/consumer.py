"""Turn geofence events into visits and coupons: a consumer group on the geo event stream.

Delivery is at-least-once: an entry is acknowledged only after it was handled, and an entry a
crashed consumer left pending is claimed (XAUTOCLAIM) and finished by another one. Handling is
idempotent: a visit is counted once per event id, and a visit coupon's idempotency key is
(offer, shopper, store, campaign day), so a replay returns the coupon issued the first time.

The stream is partitioned by shopper (geo.keys.events, GEO_EVENT_PARTITIONS): the group exists
on every partition, and each partition is read, claimed and acknowledged with its own commands
(one XREADGROUP over several partitions would be a multi-key command across slots, refused by
Redis Cluster). The single stream of earlier releases (geo.keys.LEGACY_EVENTS) is read the same
way while it exists, new entries and pending ones, so an upgrade loses no event.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import redis

from geo import keys as geo_keys

from . import keys
from .campaigns import Campaigns, local_day_hour
from .issuance import Issuer, IssueResult

log = logging.getLogger(__name__)
VISIT_KINDS = ("enter", "dwell")
SEEN_TTL_S = 3 * 86_400
# A replay handles events younger than this only: the set of event ids counted on an event's
# day lives SEEN_TTL_S after the event was first handled, so an older event's visit might be
# counted twice (an hour of margin for clocks).
REPLAY_MAX_AGE_S = SEEN_TTL_S - 3_600


@dataclass
class ReplayReport:
    """What a replay of geo events did: events read, new visits counted (one per campaign
    that counted it), coupon outcomes ("issued", "existing", "refused"), unreadable entries."""

    events: int = 0
    visits: int = 0
    coupons: dict[str, int] = field(default_factory=dict)
    unreadable: int = 0
    too_old: int = 0  # older than REPLAY_MAX_AGE_S: left alone


def consumer_name() -> str:
    """Return a name unique to this process (host and pid)."""
    return f"{socket.gethostname()}-{os.getpid()}"


class VisitConsumer:
    """Read the geo event partitions in the `promotions` group; count visits, issue coupons."""

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
        partitions: int = geo_keys.EVENT_PARTITIONS,
    ) -> None:
        self.r = r
        self.campaigns = campaigns
        self.issuer = issuer
        self.scripts = scripts
        self.name = name or consumer_name()
        self.batch = batch
        self.on_issue = on_issue
        self.streams = geo_keys.event_streams(partitions)
        self._ready: set[str] = set()  # streams whose group this consumer saw or created
        self._legacy = True  # the legacy stream may still hold entries
        self._turn = 0  # the partition a blocking read waits on next

    def ensure_group(self) -> None:
        """Create the consumer group (from the start) on every partition that lacks it, and on
        the legacy stream if that still exists."""
        for stream in self.streams:
            if stream not in self._ready:
                self._create_group(stream, mkstream=True)
        if self._legacy and geo_keys.LEGACY_EVENTS not in self._ready:
            self._create_group(geo_keys.LEGACY_EVENTS, mkstream=False)

    def _create_group(self, stream: str, *, mkstream: bool) -> None:
        try:
            self.r.xgroup_create(stream, keys.CONSUMER_GROUP, id="0", mkstream=mkstream)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                if not mkstream and self.r.exists(stream) == 0:
                    self._legacy = False  # no legacy stream: nothing to drain
                    return
                raise
        self._ready.add(stream)

    def sources(self) -> list[str]:
        """Return the streams to read: every partition, then the legacy stream while it lasts."""
        if self._legacy and geo_keys.LEGACY_EVENTS in self._ready:
            return [*self.streams, geo_keys.LEGACY_EVENTS]
        return list(self.streams)

    def run_once(self, block_ms: int | None = None) -> int:
        """Read and handle one batch of new events per stream; return how many were handled.

        One pipelined XREADGROUP per stream (non-blocking). When all were empty and block_ms
        is given, one blocking XREADGROUP waits on one partition (a different one each call),
        so an idle consumer asks each partition at least every P × block_ms and a busy one
        reads every partition on every call.
        """
        self.ensure_group()
        sources = self.sources()
        pipe = self.r.pipeline(transaction=False)
        for stream in sources:
            pipe.xreadgroup(keys.CONSUMER_GROUP, self.name, {stream: ">"}, count=self.batch)
        replies = pipe.execute(raise_on_error=False)
        handled = 0
        for stream, reply in zip(sources, replies, strict=True):
            handled += self._absorb(stream, reply)
        if handled or not block_ms:
            return handled
        stream = self.streams[self._turn % len(self.streams)]
        self._turn += 1
        try:
            reply = self.r.xreadgroup(
                keys.CONSUMER_GROUP, self.name, {stream: ">"}, count=self.batch, block=block_ms
            )
        except redis.ResponseError as exc:
            reply = exc
        return self._absorb(stream, reply)

    def _absorb(self, stream: str, reply: Any) -> int:
        """Handle one stream's XREADGROUP reply (entries, nothing, or an error)."""
        if isinstance(reply, redis.ResponseError):
            if "NOGROUP" not in str(reply):
                raise reply
            # The stream or its group was deleted: recreate it next time (the legacy stream
            # only if it is back, i.e. an old writer still runs).
            self._ready.discard(stream)
            return 0
        if isinstance(reply, Exception):
            raise reply
        entries = reply[0][1] if reply else []
        if not entries and stream == geo_keys.LEGACY_EVENTS:
            self._check_legacy_drained()
        return self._handle_all(stream, entries)

    def _check_legacy_drained(self) -> None:
        """Stop reading the legacy stream once it has nothing new and nothing pending.

        recover() looks at it again (a release before the partitions may still be writing to
        it during a rolling upgrade), so what such a writer adds later is read then.
        """
        info = self.r.xpending(geo_keys.LEGACY_EVENTS, keys.CONSUMER_GROUP)
        if info["pending"] == 0:
            self._ready.discard(geo_keys.LEGACY_EVENTS)
            self._legacy = False

    def recover(self, min_idle_ms: int = 60_000) -> int:
        """Claim entries other consumers left pending longer than min_idle_ms; handle them.

        Also looks for the legacy stream again and, if it exists, reads it until drained.
        """
        self._legacy = True
        self.ensure_group()
        handled = 0
        for stream in self.sources():
            handled += self._recover(stream, min_idle_ms)
        return handled

    def _recover(self, stream: str, min_idle_ms: int) -> int:
        handled = 0
        start = "0-0"
        while True:
            try:
                reply = self.r.xautoclaim(
                    stream,
                    keys.CONSUMER_GROUP,
                    self.name,
                    min_idle_time=min_idle_ms,
                    start_id=start,
                    count=self.batch,
                )
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                self._ready.discard(stream)
                return handled
            start, entries = reply[0], reply[1]
            # Entries deleted from the stream while pending come back as None: drop them.
            handled += self._handle_all(stream, [e for e in entries if e and e[1] is not None])
            if start in ("0-0", b"0-0"):
                return handled

    def _handle_all(self, stream: str, entries: list) -> int:
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
            self.r.xack(stream, keys.CONSUMER_GROUP, *done)
        return len(done)

    def handle(self, fields: dict[str, str], views: list | None = None) -> list[IssueResult]:
        """Handle one stream entry: count the visit and issue what the campaigns' rules say."""
        return self._handle(fields, views)[1]

    def replay(self, entries: list) -> ReplayReport:
        """Handle stream entries again, outside the consumer group (nothing is acknowledged):
        the same path as handle(), so a visit already counted is not counted again and a
        coupon already issued for it comes back as "existing". Events older than
        REPLAY_MAX_AGE_S are left alone (their visits could be counted twice). Returns what
        resulted."""
        report = ReplayReport()
        views = self.campaigns.active_views() if entries else []
        oldest = self.campaigns.clock.now() - REPLAY_MAX_AGE_S
        for entry_id, fields in entries:
            report.events += 1
            try:
                if float(json.loads(fields["event"])["at"]) < oldest:
                    report.too_old += 1
                    continue
                counted, results = self._handle(fields, views)
            except redis.RedisError:
                raise
            except Exception:
                log.exception("promotions: cannot replay geo event %s", entry_id)
                report.unreadable += 1
                continue
            report.visits += counted
            for result in results:
                report.coupons[result.outcome] = report.coupons.get(result.outcome, 0) + 1
        return report

    def _handle(self, fields: dict[str, str], views: list | None) -> tuple[int, list[IssueResult]]:
        """Return how many campaigns counted the event as a new visit, and the issuances."""
        event = json.loads(fields["event"])
        if event.get("kind") not in VISIT_KINDS:
            return 0, []
        store = self.campaigns.store(event["store_id"])
        if store is None:
            return 0, []
        results = []
        counted = 0
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
            counted += int(
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
        return counted, results

    def pending(self) -> dict[str, Any]:
        """Return the group's pending summary over every stream (for health checks and tests)."""
        return pending_summary(self.r, self.sources())


def pending_summary(r: redis.Redis, streams: Iterable[str]) -> dict[str, Any]:
    """Return the `promotions` group's pending count and per-consumer counts over streams."""
    streams = list(streams)
    pipe = r.pipeline(transaction=False)
    for stream in streams:
        pipe.xpending(stream, keys.CONSUMER_GROUP)
    total, consumers = 0, {}
    for info in pipe.execute(raise_on_error=False):
        if isinstance(info, Exception):
            if "NOGROUP" in str(info):
                continue  # no group on that stream (yet): nothing pending there
            raise info
        total += info["pending"]
        for consumer in info["consumers"]:
            consumers[consumer["name"]] = consumers.get(consumer["name"], 0) + consumer["pending"]
    return {"pending": total, "consumers": consumers}
