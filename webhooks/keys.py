"""Redis keys of the webhooks, each named with the hash tag of the invariant it belongs to.

- `{wh}`: the endpoint registry, its version and the endpoints' health (one small slot).
- `{wq<k>}`: delivery partition k: its queue stream, retry schedule and the retries' jobs, so
  that moving a job between them is one script.
- `{wl<endpoint>}`: one endpoint's attempt log and its failed messages.
- `{wx}`: the stream of events that no other stream records (live drops and streams).
"""

from __future__ import annotations

import zlib

ENDPOINTS = "wh:{wh}:endpoints"  # hash: endpoint id -> endpoint JSON (secrets included)
VERSION = "wh:{wh}:version"  # counter bumped by every endpoint change (process caches)
HEALTH = "wh:{wh}:health"  # hash: fs:<id> failing since, pu:<id> paused until
SEQ = "wh:{wh}:seq"  # counter: the next endpoint id
EVENTS = "wh:{wx}:events"  # stream: live events (the other sources are their own streams)
FEED_GROUP = "webhooks"  # the consumer group on every source stream
QUEUE_GROUP = "senders"  # the consumer group on the delivery queues
PARTITIONS = 8  # default delivery partitions (WEBHOOK_PARTITIONS); every process must agree


def partition(endpoint_id: str, partitions: int) -> int:
    """Return the delivery partition of an endpoint (CRC-32 of its id)."""
    return zlib.crc32(endpoint_id.encode()) % partitions


def queue(k: int) -> str:
    """Stream: delivery jobs of partition k ready to be sent now."""
    return f"wh:{{wq{k}}}:queue"


def retry(k: int) -> str:
    """Sorted set: job id -> when it is due again (retries of partition k)."""
    return f"wh:{{wq{k}}}:retry"


def jobs(k: int) -> str:
    """Hash: job id -> job JSON, for the jobs waiting in partition k's retry schedule."""
    return f"wh:{{wq{k}}}:jobs"


def log(endpoint_id: str) -> str:
    """Stream: every delivery attempt to one endpoint (capped)."""
    return f"wh:{{wl{endpoint_id}}}:log"


def failed(endpoint_id: str) -> str:
    """Hash: message id -> job JSON, for messages whose retries ran out or were stopped."""
    return f"wh:{{wl{endpoint_id}}}:failed"
