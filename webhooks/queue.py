"""The delivery queue: jobs ready now (a stream per partition, read in a consumer group), jobs
waiting for a retry (a schedule and their bodies), and the scripts that move jobs between them.

A job is one message for one endpoint. It is in exactly one place at a time: the queue stream
(pending in a sender's list while it is being delivered), the retry schedule, an endpoint's
failed messages, or nowhere (delivered). Moves inside a partition are one script each.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any

import redis

from core.scripts import LuaScripts

from . import keys

# KEYS: queue stream, retry schedule, jobs   ARGV: entry id, job id, job JSON, due at
# A job leaves the stream for the schedule: acknowledged and deleted, its body kept by id.
DEFER = """
redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[2])
if ARGV[1] ~= '' then
  redis.call('XACK', KEYS[1], 'senders', ARGV[1])
  redis.call('XDEL', KEYS[1], ARGV[1])
end
return 1
"""

# KEYS: queue stream, retry schedule, jobs   ARGV: now, limit, stream max length
# Every job due by now goes back to the stream (its schedule entry and kept body removed).
PROMOTE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local moved = 0
for _, id in ipairs(due) do
  local job = redis.call('HGET', KEYS[3], id)
  redis.call('ZREM', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id)
  if job then
    redis.call('XADD', KEYS[1], '*', 'j', job)
    moved = moved + 1
  end
end
return moved
"""

# KEYS: retry schedule   ARGV: job id
# Retry now: a scheduled job becomes due at once (0 if it is not scheduled).
DUE_NOW = """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], 0, ARGV[1])
return 1
"""


@dataclass
class Job:
    """One message for one endpoint, and how far its delivery got."""

    msg: str  # the message id (webhook-id), the same on every attempt
    ep: str  # the endpoint id
    type: str
    body: str  # the JSON body, signed as is
    at: float  # when the event happened
    n: int = 0  # attempts made so far
    manual: bool = False  # re-sent by hand after its retries ran out

    @property
    def id(self) -> str:
        return f"{self.msg}:{self.ep}"

    def dumps(self) -> str:
        # Every field by name, shallowly: dataclasses.asdict deep-copies each value, which was
        # a few % of a server's CPU at a few thousand jobs a second (bench/webhook_bench.py).
        doc = {name: getattr(self, name) for name in _JOB_FIELDS}
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def loads(cls, raw: str) -> Job:
        return cls(**json.loads(raw))


_JOB_FIELDS = tuple(f.name for f in fields(Job))


class DeliveryQueue:
    """The partitions of ready and scheduled jobs."""

    def __init__(self, r: redis.Redis, partitions: int = keys.PARTITIONS, maxlen: int = 1_000_000):
        self.r = r
        self.partitions = partitions
        self.maxlen = maxlen
        self.scripts = LuaScripts(r, {"defer": DEFER, "promote": PROMOTE, "due_now": DUE_NOW})
        self._ready: set[str] = set()

    def partition(self, ep: str) -> int:
        return keys.partition(ep, self.partitions)

    def streams(self) -> list[str]:
        return [keys.queue(k) for k in range(self.partitions)]

    def ensure_groups(self) -> None:
        """Create the senders' group on every partition that lacks it."""
        for stream in self.streams():
            if stream in self._ready:
                continue
            try:
                self.r.xgroup_create(stream, keys.QUEUE_GROUP, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            self._ready.add(stream)

    def forget_group(self, stream: str) -> None:
        self._ready.discard(stream)

    def queue_jobs(self, pipe, jobs: Iterable[Job]) -> int:
        """Add XADDs of jobs (ready now) to a pipeline; return how many."""
        n = 0
        for job in jobs:
            pipe.xadd(
                keys.queue(self.partition(job.ep)),
                {"j": job.dumps()},
                maxlen=self.maxlen,
                approximate=True,
            )
            n += 1
        return n

    def queue_done(self, pipe, stream: str, *entry_ids: str) -> None:
        """Acknowledge and delete delivered (or finally failed) entries of one stream."""
        if entry_ids:
            pipe.xack(stream, keys.QUEUE_GROUP, *entry_ids)
            pipe.xdel(stream, *entry_ids)

    def queue_defer(self, pipe, job: Job, due: float, entry_id: str = "") -> None:
        """Move a job from the stream (if entry_id) to the retry schedule, due at `due`."""
        k = self.partition(job.ep)
        self.scripts.queue(
            pipe,
            "defer",
            [keys.queue(k), keys.retry(k), keys.jobs(k)],
            [entry_id, job.id, job.dumps(), repr(due)],
        )

    def promote(self, now: float, limit: int = 500) -> int:
        """Move every due retry back into its stream; return how many moved."""
        pipe = self.r.pipeline(transaction=False)
        for k in range(self.partitions):
            self.scripts.queue(
                pipe, "promote", [keys.queue(k), keys.retry(k), keys.jobs(k)], [repr(now), limit]
            )
        replies = pipe.execute(raise_on_error=False)
        if any(isinstance(r, redis.exceptions.NoScriptError) for r in replies):
            self.scripts.load()
            return self.promote(now, limit)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return sum(int(r) for r in replies)

    def due_now(self, job_id: str, ep: str) -> bool:
        """Make a scheduled job due at once; False if it is not in the schedule."""
        return bool(self.scripts.call("due_now", [keys.retry(self.partition(ep))], [job_id]))

    def scheduled(self, ep: str, msg: str) -> dict[str, Any] | None:
        """Return a scheduled job of a message and when it is due, or None."""
        k = self.partition(ep)
        job_id = f"{msg}:{ep}"
        pipe = self.r.pipeline(transaction=False)
        pipe.zscore(keys.retry(k), job_id)
        pipe.hget(keys.jobs(k), job_id)
        due, raw = pipe.execute()
        if due is None or raw is None:
            return None
        return {"job": Job.loads(raw), "due_at": float(due)}

    def backlog(self) -> dict[str, int]:
        """Return how many jobs are ready (not yet delivered) and scheduled for a retry."""
        pipe = self.r.pipeline(transaction=False)
        for k in range(self.partitions):
            pipe.xlen(keys.queue(k))
            pipe.zcard(keys.retry(k))
        replies = pipe.execute()
        return {"ready": sum(replies[0::2]), "scheduled": sum(replies[1::2])}
