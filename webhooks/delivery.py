"""Sending: read ready jobs in the `senders` group, POST them signed, and record each attempt.

At-least-once: a job leaves the queue only after its attempt was recorded (delivered, scheduled
again, or failed for good); a sender that dies mid-delivery leaves its entries pending and
another one claims them after WEBHOOK_CLAIM_IDLE_MS. Any 2xx is success. 410 disables the
endpoint. 429/502/504 with Retry-After pause the endpoint until then. Otherwise the job retries
on the Standard Webhooks schedule with ±10 % jitter; an endpoint that has failed for
WEBHOOK_DISABLE_AFTER_S without one success is disabled, and its owner sees why.

Sends run on a pool of WEBHOOK_CONCURRENCY workers (greenlets in the server), so one slow
receiver never holds the others; the loop that reads, fans out and records never waits on one.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import random
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import redis
import urllib3
from standardwebhooks import Webhook

from core.errors import NotFound
from geo import keys as geo_keys

from . import keys
from . import log as delivery_log
from .endpoints import MAX_ENDPOINTS, Endpoints
from .events import PING, Event, Subjects, message_id
from .feeds import FanOut, LiveLookup
from .outbound import OutboundPolicy, Refused
from .queue import DeliveryQueue, Job

log = logging.getLogger(__name__)

# The Standard Webhooks schedule: the delay before attempt 2, 3, ... 10 (attempt 1 is at once).
SCHEDULE_S = (5, 300, 1_800, 7_200, 18_000, 36_000, 50_400, 72_000, 86_400)
BACKOFF_STATUSES = (429, 502, 504)
MAX_RETRY_AFTER_S = 86_400
USER_AGENT = "Footfall-Webhooks/1.0"
RESPONSE_KEEP = 200  # characters of a receiver's answer kept in the log


@dataclass(frozen=True)
class DispatchSettings:
    """How deliveries run (WEBHOOK_* settings)."""

    partitions: int = keys.PARTITIONS
    geo_partitions: int = geo_keys.EVENT_PARTITIONS
    concurrency: int = 64
    batch: int = 200
    claim_idle_ms: int = 60_000
    disable_after_s: float = 5 * 86_400
    log_max: int = 10_000
    schedule_s: tuple[float, ...] = SCHEDULE_S
    jitter: float = 0.1


@dataclass
class Attempt:
    """The outcome of one POST."""

    job: Job
    entry: tuple[str, str]  # (queue stream, entry id)
    status: int = 0  # HTTP status, 0 when no answer came
    error: str = ""
    response: str = ""
    latency_ms: float = 0.0
    retry_after: float | None = None
    sent_at: float = 0.0
    skipped: str = ""  # why it was not sent (endpoint gone, disabled or paused)
    paused_until: float = 0.0


@dataclass
class Outcome:
    """What recording an attempt decided (for metrics and the bench)."""

    job: Job
    result: str  # succeeded, retrying, failed, dropped, deferred
    status: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Return the seconds a Retry-After header asks for (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(min(int(value), MAX_RETRY_AFTER_S))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, min(when.timestamp() - now, MAX_RETRY_AFTER_S))


class Dispatcher:
    """Fan events out into jobs, send ready jobs, and schedule retries (one per process)."""

    def __init__(
        self,
        r: redis.Redis,
        clock,
        endpoints: Endpoints,
        policy: OutboundPolicy,
        subjects: Subjects,
        settings: DispatchSettings | None = None,
        *,
        name: str | None = None,
        live_lookup: LiveLookup | None = None,
        wall: Callable[[], float] = time.time,
        on_outcome: Callable[[Outcome], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.r = r
        self.clock = clock
        self.endpoints = endpoints
        self.policy = policy
        self.settings = settings or DispatchSettings()
        self.name = name or consumer_name()
        self.queue = DeliveryQueue(r, self.settings.partitions)
        self.fanout = FanOut(
            r,
            endpoints,
            self.queue,
            subjects,
            self.name,
            geo_partitions=self.settings.geo_partitions,
            live_lookup=live_lookup,
            batch=self.settings.batch,
        )
        self.wall = wall  # the webhook-timestamp header: the real time of sending
        self.on_outcome = on_outcome
        self.rng = rng or random.Random()
        self._pool: ThreadPoolExecutor | None = None
        self._done: queue.SimpleQueue[Attempt] = queue.SimpleQueue()
        self._inflight = 0
        self._rounds = 0
        self._signers: dict[str, Webhook] = {}  # secret -> its signer (decoded once)

    # -- the loop ----------------------------------------------------------------------------
    def run_once(self, wait_s: float = 0.0) -> int:
        """One round: fan out new events, promote due retries, start sends, record the
        finished ones (waiting up to wait_s for one when nothing else happened).

        Returns how much happened (entries fanned out, jobs started, attempts recorded).
        """
        endpoints = self.endpoints.snapshot()
        if not endpoints and not self._inflight:
            return 0
        self.queue.ensure_groups()
        work = 0
        if self._rounds % 50 == 0:
            work += self.recover(endpoints)
        self._rounds += 1
        work += self.fanout.run_once(endpoints)
        self.queue.promote(self.clock.now())
        work += self._start(endpoints)
        work += self._record(wait_s if not work else 0.0)
        return work

    def drain(self, rounds: int = 1_000) -> int:
        """Run rounds until nothing is left to do now (tests, the CLI); return the work done."""
        total = 0
        for _ in range(rounds):
            work = self.run_once(wait_s=0.05 if self._inflight else 0.0)
            total += work
            if not work and not self._inflight:
                break
        return total

    def recover(self, endpoints: dict[str, dict[str, Any]] | None = None) -> int:
        """Claim feed entries and jobs that a dead process left pending."""
        endpoints = self.endpoints.snapshot() if endpoints is None else endpoints
        idle = self.settings.claim_idle_ms
        work = self.fanout.recover(endpoints, idle)
        capacity = self.settings.concurrency - self._inflight
        if capacity <= 0:
            return work
        pipe = self.r.pipeline(transaction=False)
        streams = self.queue.streams()
        for stream in streams:
            pipe.xautoclaim(stream, keys.QUEUE_GROUP, self.name, idle, "0-0", count=capacity)
        entries = []
        for stream, reply in zip(streams, pipe.execute(raise_on_error=False), strict=True):
            if isinstance(reply, Exception):
                continue
            entries.extend((stream, eid, fields) for eid, fields in reply[1] if fields)
        if entries:
            log.info("webhooks: claimed %d deliveries a dead sender left", len(entries))
        self._submit(entries[:capacity], endpoints)
        return work + len(entries)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self._record(0.0)

    # -- sending -----------------------------------------------------------------------------
    def _start(self, endpoints: dict[str, dict[str, Any]]) -> int:
        capacity = self.settings.concurrency - self._inflight
        if capacity <= 0:
            return 0
        streams = self.queue.streams()
        per = max(1, capacity // len(streams))
        pipe = self.r.pipeline(transaction=False)
        for stream in streams:
            pipe.xreadgroup(keys.QUEUE_GROUP, self.name, {stream: ">"}, count=per)
        entries = []
        for stream, reply in zip(streams, pipe.execute(raise_on_error=False), strict=True):
            if isinstance(reply, redis.ResponseError) and "NOGROUP" in str(reply):
                self.queue.forget_group(stream)
                continue
            if isinstance(reply, Exception):
                raise reply
            if reply:
                entries.extend((stream, eid, fields) for eid, fields in reply[0][1])
        self._submit(entries, endpoints)
        return len(entries)

    def _submit(self, entries, endpoints: dict[str, dict[str, Any]]) -> None:
        if not entries:
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.settings.concurrency, "webhook-send")
        health = self.r.hgetall(keys.HEALTH)  # small: failing or paused endpoints only
        now = self.clock.now()
        for stream, entry_id, fields in entries:
            try:
                job = Job.loads(fields["j"])
            except (KeyError, TypeError, ValueError):
                log.error("webhooks: dropping unreadable job %s in %s", entry_id, stream)
                pipe = self.r.pipeline(transaction=False)
                self.queue.queue_done(pipe, stream, entry_id)
                pipe.execute()
                continue
            attempt = Attempt(job, (stream, entry_id))
            rec = endpoints.get(job.ep)
            paused = float(health.get(f"pu:{job.ep}", 0))
            if rec is None:
                attempt.skipped = "endpoint_deleted"
            elif rec["status"] != "active":
                attempt.skipped = "endpoint_disabled"
            elif paused > now:
                attempt.skipped, attempt.paused_until = "paused", paused
            if attempt.skipped:
                self._done.put(attempt)
            else:
                self._inflight += 1
                self._pool.submit(self._send, attempt, rec, now)

    def _send(self, attempt: Attempt, rec: dict[str, Any], now: float) -> None:
        """POST one job (in a pool worker); the result goes to the recording queue."""
        job = attempt.job
        try:
            sent = self.wall()
            stamp = datetime.fromtimestamp(int(sent), UTC)
            body = job.body.encode()
            signature = " ".join(
                self._signer(secret).sign(job.msg, stamp, body)
                for secret in self.endpoints.signing_secrets(rec, now)
            )
            headers = {
                "webhook-id": job.msg,
                "webhook-timestamp": str(int(sent)),
                "webhook-signature": signature,
                "content-type": "application/json",
                "user-agent": USER_AGENT,
            }
            started = time.perf_counter()
            attempt.sent_at = now
            response = self.policy.post(rec["url"], body, headers)
            try:
                attempt.status = response.status
                attempt.response = response.read(RESPONSE_KEEP * 4).decode("utf-8", "replace")[
                    :RESPONSE_KEEP
                ]
                attempt.retry_after = parse_retry_after(
                    response.headers.get("retry-after"), self.wall()
                )
            finally:
                response.release_conn()
            attempt.latency_ms = (time.perf_counter() - started) * 1000
        except Refused as exc:
            attempt.error = f"{exc.code}: {exc}"
        except urllib3.exceptions.TimeoutError:
            attempt.error = "timeout"
        except urllib3.exceptions.HTTPError as exc:
            attempt.error = f"connection: {type(exc).__name__}: {exc}"[:300]
        except Exception as exc:  # the attempt must be recorded whatever went wrong
            log.exception("webhooks: sending %s failed", job.id)
            attempt.error = f"{type(exc).__name__}: {exc}"[:300]
        finally:
            self._done.put(attempt)

    def _signer(self, secret: str) -> Webhook:
        signer = self._signers.get(secret)
        if signer is None:
            if len(self._signers) >= 4 * MAX_ENDPOINTS:
                self._signers.clear()  # rotated and deleted endpoints' secrets go too
            signer = self._signers[secret] = Webhook(secret)
        return signer

    # -- recording ---------------------------------------------------------------------------
    def _record(self, wait_s: float) -> int:
        finished: list[Attempt] = []
        try:
            if wait_s > 0:
                finished.append(self._done.get(timeout=wait_s))
            while True:
                finished.append(self._done.get_nowait())
        except queue.Empty:
            pass
        if not finished:
            return 0
        now = self.clock.now()
        pipe = self.r.pipeline(transaction=False)
        outcomes = []
        disable: dict[str, tuple[str, str]] = {}
        health = self.r.hgetall(keys.HEALTH)
        done: dict[str, list[str]] = {}  # stream -> entries to acknowledge and delete
        for attempt in finished:
            if not attempt.skipped:
                self._inflight -= 1
            outcomes.append(self._decide(pipe, attempt, now, health, disable, done))
        # After the attempts' log entries and schedules, in the same pipeline: one XACK and
        # one XDEL per stream for the whole batch instead of two commands per job.
        for stream, entry_ids in done.items():
            self.queue.queue_done(pipe, stream, *entry_ids)
        pipe.execute()
        for eid, (code, reason) in disable.items():
            if self.endpoints.disable(eid, code, reason):
                log.warning("webhooks: endpoint %s disabled: %s", eid, reason)
        if self.on_outcome is not None:
            for outcome in outcomes:
                self.on_outcome(outcome)
        return len(finished)

    def _decide(self, pipe, attempt: Attempt, now: float, health, disable, done) -> Outcome:
        job, (stream, entry_id) = attempt.job, attempt.entry
        if attempt.skipped == "endpoint_deleted":
            done.setdefault(stream, []).append(entry_id)
            return Outcome(job, "dropped")
        if attempt.skipped == "paused":
            self.queue.queue_defer(pipe, job, attempt.paused_until, entry_id)
            return Outcome(job, "deferred")
        if attempt.skipped == "endpoint_disabled":
            self._fail(pipe, job, "endpoint_disabled", done, stream, entry_id)
            self._log(pipe, job, now, "failed", error="the endpoint is disabled; not sent")
            return Outcome(job, "failed")
        job.n += 1
        fields: dict[str, Any] = {"status": attempt.status, "latency_ms": attempt.latency_ms}
        if attempt.error:
            fields["error"] = attempt.error
        if attempt.response:
            fields["response"] = attempt.response
        if 200 <= attempt.status < 300:
            done.setdefault(stream, []).append(entry_id)
            if f"fs:{job.ep}" in health:
                pipe.hdel(keys.HEALTH, f"fs:{job.ep}")
                health.pop(f"fs:{job.ep}", None)
            self._log(pipe, job, now, "succeeded", **fields)
            return Outcome(job, "succeeded", attempt.status)
        if attempt.status == 410:
            disable[job.ep] = ("gone", "the endpoint answered 410 Gone")
            self._fail(pipe, job, "gone", done, stream, entry_id)
            self._log(pipe, job, now, "failed", **fields)
            return Outcome(job, "failed", attempt.status)
        failing_since = float(health.get(f"fs:{job.ep}", now))
        if f"fs:{job.ep}" not in health:
            pipe.hsetnx(keys.HEALTH, f"fs:{job.ep}", repr(now))
            health[f"fs:{job.ep}"] = repr(now)
        if now - failing_since >= self.settings.disable_after_s:
            since = datetime.fromtimestamp(failing_since, UTC).strftime("%Y-%m-%d %H:%M UTC")
            disable[job.ep] = ("failing", f"every delivery has failed since {since}")
            self._fail(pipe, job, "failing", done, stream, entry_id)
            self._log(pipe, job, now, "failed", **fields)
            return Outcome(job, "failed", attempt.status)
        schedule = self.settings.schedule_s
        if job.n > len(schedule) or job.manual:
            self._fail(pipe, job, "exhausted", done, stream, entry_id)
            self._log(pipe, job, now, "failed", **fields)
            return Outcome(job, "failed", attempt.status)
        delay = schedule[job.n - 1] * (1 + self.rng.uniform(-1, 1) * self.settings.jitter)
        if attempt.status in BACKOFF_STATUSES and attempt.retry_after is not None:
            delay = max(delay, attempt.retry_after)
            pipe.hset(keys.HEALTH, f"pu:{job.ep}", repr(now + attempt.retry_after))
        self.queue.queue_defer(pipe, job, now + delay, entry_id)
        self._log(pipe, job, now, "retrying", next_at=round(now + delay, 3), **fields)
        return Outcome(job, "retrying", attempt.status, {"due": now + delay})

    def _fail(self, pipe, job: Job, why: str, done, stream: str, entry_id: str) -> None:
        pipe.hset(keys.failed(job.ep), job.msg, json.dumps({"why": why, "job": job.dumps()}))
        done.setdefault(stream, []).append(entry_id)

    def _log(self, pipe, job: Job, now: float, result: str, **fields: Any) -> None:
        entry = {"at": repr(now), "msg": job.msg, "type": job.type, "n": job.n, "result": result}
        for name, value in fields.items():
            if value is not None and value != "":
                entry[name] = value if isinstance(value, str) else json.dumps(value)
        delivery_log.write(pipe, job.ep, entry, self.settings.log_max)

    # -- by hand -----------------------------------------------------------------------------
    def ping(self, eid: str) -> str:
        """Queue a `webhook.ping` message to one endpoint; return its message id."""
        rec = self.endpoints.record(eid)
        now = self.clock.now()
        msg = message_id(f"ping|{eid}|{now!r}|{random.random()!r}")
        body = Event(msg, PING, now, {"endpoint_id": eid, "description": rec["description"]})
        job = Job(msg, eid, PING, body.body(), now)
        pipe = self.r.pipeline(transaction=False)
        self.queue.queue_jobs(pipe, [job])
        pipe.execute()
        return msg

    def retry_now(self, eid: str, msg: str) -> str:
        """Send a message again at once: a scheduled retry becomes due now; a failed message
        goes back to the queue for one more attempt. Returns 'scheduled' or 'requeued'.

        Asking by hand also lifts a pause the endpoint asked for (Retry-After).
        """
        self.endpoints.record(eid)
        self.r.hdel(keys.HEALTH, f"pu:{eid}")
        if self.queue.due_now(f"{msg}:{eid}", eid):
            return "scheduled"
        raw = self.r.hget(keys.failed(eid), msg)
        if raw is None:
            raise NotFound(
                "no failed or scheduled message with this id", code="not_found", field="msg_id"
            )
        job = Job.loads(json.loads(raw)["job"])
        job.manual = True
        pipe = self.r.pipeline(transaction=False)
        self.queue.queue_jobs(pipe, [job])
        pipe.hdel(keys.failed(eid), msg)
        pipe.execute()
        return "requeued"
