"""The sources of events, each read in the `webhooks` consumer group, and the fan-out of their
entries into delivery jobs.

Sources: every geofence event partition (geo.keys), every campaign's ledger (promotions.keys;
campaigns listed by promo:campaigns), and the webhooks' own stream of live events. A group is
created at the earliest endpoint's creation time, so nothing older is ever read. An entry is
acknowledged once its jobs are in the queue: a process that dies in between leaves it pending,
another one claims it, and the jobs are queued again with the same message ids.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from geo import keys as geo_keys
from promotions import keys as promo_keys

from . import keys
from .events import Event, Subjects, from_geo, from_ledger, from_live
from .queue import DeliveryQueue, Job

log = logging.getLogger(__name__)

# (type, key) -> (data, campaign id) of a live event at fan-out time, or None to skip it.
LiveLookup = Callable[[str, str], "tuple[dict[str, Any], str | None] | None"]


@dataclass(frozen=True)
class Source:
    """One stream read in the group, and how its entries become events."""

    stream: str
    kind: str  # "geo", "ledger" or "live"
    campaign_id: str | None = None


def matches(rec: dict[str, Any], event: Event) -> bool:
    """Tell whether an endpoint wants an event (status, type, campaign scope, and whether it
    happened after the endpoint was made)."""
    if rec["status"] != "active":
        return False
    if "*" not in rec["event_types"] and event.type not in rec["event_types"]:
        return False
    if rec.get("campaign_id") and rec["campaign_id"] != event.campaign_id:
        return False
    return event.at >= rec["created_at"]


class FanOut:
    """Read the sources in the group and queue one job per event and endpoint that wants it."""

    def __init__(
        self,
        r: redis.Redis,
        endpoints,
        queue: DeliveryQueue,
        subjects: Subjects,
        consumer: str,
        *,
        geo_partitions: int = geo_keys.EVENT_PARTITIONS,
        live_lookup: LiveLookup | None = None,
        batch: int = 200,
    ) -> None:
        self.r = r
        self.endpoints = endpoints
        self.queue = queue
        self.subjects = subjects
        self.consumer = consumer
        self.geo_streams = geo_keys.event_streams(geo_partitions)
        self.live_lookup = live_lookup
        self.batch = batch
        self._ready: set[str] = set()

    def sources(self) -> list[Source]:
        """Return every source stream: geo partitions, live events, each campaign's ledger."""
        out = [Source(stream, "geo") for stream in self.geo_streams]
        out.append(Source(keys.EVENTS, "live"))
        for cid in self.r.zrange(promo_keys.CAMPAIGNS, 0, -1):
            out.append(Source(promo_keys.ledger(cid), "ledger", cid))
        return out

    def _ensure(self, sources: list[Source], start_ms: int) -> None:
        pipe = self.r.pipeline(transaction=False)
        todo = [s for s in sources if s.stream not in self._ready]
        for source in todo:
            pipe.xgroup_create(source.stream, keys.FEED_GROUP, id=f"{start_ms}-0", mkstream=True)
        for source, reply in zip(todo, pipe.execute(raise_on_error=False), strict=True):
            if isinstance(reply, Exception) and "BUSYGROUP" not in str(reply):
                raise reply
            self._ready.add(source.stream)

    def run_once(self, endpoints: dict[str, dict[str, Any]]) -> int:
        """Read one batch of new entries per source and queue their jobs; return how many
        entries were handled. Reads nothing while no endpoint is active."""
        active = [rec for rec in endpoints.values() if rec["status"] == "active"]
        if not active:
            return 0
        start_ms = int(min(rec["created_at"] for rec in active) * 1000)
        sources = self.sources()
        self._ensure(sources, start_ms)
        pipe = self.r.pipeline(transaction=False)
        for source in sources:
            pipe.xreadgroup(keys.FEED_GROUP, self.consumer, {source.stream: ">"}, count=self.batch)
        batches = []
        for source, reply in zip(sources, pipe.execute(raise_on_error=False), strict=True):
            if isinstance(reply, redis.ResponseError) and "NOGROUP" in str(reply):
                self._ready.discard(source.stream)
                continue
            if isinstance(reply, Exception):
                raise reply
            if reply:
                batches.append((source, reply[0][1]))
        return self.handle(batches, endpoints)

    def recover(self, endpoints: dict[str, dict[str, Any]], min_idle_ms: int) -> int:
        """Claim entries a dead consumer left pending and queue their jobs again."""
        if not endpoints:
            return 0
        sources = [s for s in self.sources() if s.stream in self._ready]
        pipe = self.r.pipeline(transaction=False)
        for source in sources:
            pipe.xautoclaim(
                source.stream, keys.FEED_GROUP, self.consumer, min_idle_ms, "0-0", count=self.batch
            )
        batches = []
        for source, reply in zip(sources, pipe.execute(raise_on_error=False), strict=True):
            if isinstance(reply, Exception):
                continue
            entries = [e for e in reply[1] if e[1] is not None]
            if entries:
                batches.append((source, entries))
        return self.handle(batches, endpoints)

    def handle(self, batches, endpoints: dict[str, dict[str, Any]]) -> int:
        """Queue the jobs of these entries, then acknowledge them."""
        jobs: list[Job] = []
        for source, entries in batches:
            for entry_id, fields in entries:
                event = self.event(source, entry_id, fields)
                if event is None:
                    continue
                body = None
                for rec in endpoints.values():
                    if matches(rec, event):
                        body = body or event.body()
                        jobs.append(Job(event.id, rec["id"], event.type, body, event.at))
        if jobs:
            pipe = self.r.pipeline(transaction=False)
            self.queue.queue_jobs(pipe, jobs)
            pipe.execute()
        if batches:
            pipe = self.r.pipeline(transaction=False)
            for source, entries in batches:
                pipe.xack(source.stream, keys.FEED_GROUP, *[e[0] for e in entries])
            pipe.execute()
        return sum(len(entries) for _, entries in batches)

    def event(self, source: Source, entry_id: str, fields: dict[str, str]) -> Event | None:
        """Turn one entry into its event (None: not an event for receivers)."""
        try:
            if source.kind == "geo":
                return from_geo(source.stream, entry_id, fields, self.subjects)
            if source.kind == "ledger":
                return from_ledger(source.campaign_id, entry_id, fields, self.subjects)
            event = from_live(entry_id, fields)
            if event is not None and self.live_lookup is not None and not event.data:
                found = self.live_lookup(event.type, fields.get("key", ""))
                if found is None:
                    return None
                data, cid = found
                event = Event(event.id, event.type, event.at, data, cid)
            return event
        except Exception:  # a malformed entry must not stall the feed
            log.exception("webhooks: cannot read %s entry %s", source.stream, entry_id)
            return None
