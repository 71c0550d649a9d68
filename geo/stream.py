"""Committed events out: the shopper's partition of the event stream, then the outbox emptied."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import redis

from . import keys
from .model import EngineSettings, EventSink


class EventStream:
    """Append committed events to the stream and push them to the sink."""

    def __init__(self, r: redis.Redis, settings: EngineSettings, sink: EventSink) -> None:
        self.r = r
        self.settings = settings
        self.sink = sink

    def append(self, batches: list[tuple[str, list[dict[str, Any]]]]) -> None:
        """Append shoppers' committed events to their stream partitions, then empty their
        outboxes.

        Two round trips: an outbox goes only once its events are in the stream. One pipeline
        would not keep that order on Redis Cluster, where the stream and a shopper's keys are
        on different nodes and a pipeline's commands to different nodes are not ordered.
        A shopper's events all go to one partition, in order.
        """
        partitions = self.settings.event_partitions
        maxlen = max(1, -(-self.settings.stream_maxlen // partitions))
        pipe = self.r.pipeline(transaction=False)
        for shopper_id, events in batches:
            stream = keys.shopper_events(shopper_id, partitions)
            for event in events:
                pipe.xadd(
                    stream,
                    {"event": json.dumps(event, separators=(",", ":"))},
                    maxlen=maxlen,
                    approximate=True,
                )
        pipe.execute()
        pipe = self.r.pipeline(transaction=False)
        for shopper_id, _events in batches:
            pipe.delete(keys.shopper_outbox(shopper_id))
            pipe.hdel(keys.shopper_state(shopper_id), "ob")
        pipe.execute()

    def deliver(self, batches: list[tuple[str, list[dict[str, Any]]]]) -> None:
        """Append committed events (see append), then push them to the sink."""
        if not batches:
            return
        self.append(batches)
        for shopper_id, events in batches:
            self.sink.publish(shopper_id, events)

    def flush_outboxes(self, shopper_ids: Iterable[str]) -> int:
        """Append events a crashed process committed but never streamed; return how many."""
        count = 0
        for shopper_id in shopper_ids:
            raw = self.r.lrange(keys.shopper_outbox(shopper_id), 0, -1)
            if not raw:
                continue
            events = [json.loads(item) for item in raw]
            self.deliver([(shopper_id, events)])
            count += len(events)
        return count
