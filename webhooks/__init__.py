"""Outgoing webhooks: endpoints, events from the system of record, signed at-least-once delivery.

Events come from streams that the changes themselves write (the geofence event partitions, each
campaign's ledger, and one stream of live events), read in a consumer group and fanned out into
a durable delivery queue; senders deliver each job with Standard Webhooks signatures, retry on
the specification's schedule and log every attempt per endpoint.
"""

from __future__ import annotations

import time

from .delivery import Dispatcher, DispatchSettings
from .emit import LiveEvents
from .endpoints import EndpointIn, EndpointPatch, Endpoints
from .events import EVENT_TYPES, Event, Subjects
from .feeds import LiveLookup
from .log import DeliveryLog
from .outbound import OutboundPolicy


class Webhooks:
    """Every webhook service of one process, sharing one Redis client and clock."""

    def __init__(
        self,
        r,
        clock,
        policy: OutboundPolicy,
        subject_key: bytes,
        settings: DispatchSettings | None = None,
        *,
        live_lookup: LiveLookup | None = None,
        on_outcome=None,
    ) -> None:
        self.policy = policy
        self._due_at = float("-inf")
        self.endpoints = Endpoints(r, clock, check_url=policy.validate)
        self.log = DeliveryLog(r)
        self.live = LiveEvents(r, clock)
        self.dispatcher = Dispatcher(
            r,
            clock,
            self.endpoints,
            policy,
            Subjects(subject_key),
            settings,
            live_lookup=live_lookup,
            on_outcome=on_outcome,
        )

    def run_once(self, wait_s: float = 0.0) -> int:
        """One round of the background work: due drop endings (at most once a second, also
        while no endpoint exists, so that the schedule never grows), fan-out, sends, records."""
        now = time.monotonic()
        if now - self._due_at >= 1.0:
            self._due_at = now
            self.live.due()
        return self.dispatcher.run_once(wait_s)


__all__ = [
    "EVENT_TYPES",
    "DeliveryLog",
    "DispatchSettings",
    "Dispatcher",
    "EndpointIn",
    "EndpointPatch",
    "Endpoints",
    "Event",
    "LiveEvents",
    "OutboundPolicy",
    "Subjects",
    "Webhooks",
]
