"""Replica waits for money-like writes: an acknowledged coupon, redemption or drop win is on its
master and on `replicas` replicas before the caller hears of it (REDIS_WAIT_REPLICAS).

Redis answers WAIT for the writes made *on the connection that sends it* (its last write's
replication offset). A connection pool hands out any connection, so the write itself and the
WAIT may not share one; on Redis Cluster the two may not even go to the same node. Hence a
fence: after the domain's write has been answered, `confirm(key)` sends, on **one** connection
to the node that holds `key`'s slot, `SET <fence> ...` (a real write under the key's hash tag,
so on the same node) and then `WAIT replicas timeout_ms`. The master's replication stream is one
ordered stream, so once the fence is on `replicas` replicas, every write the master answered
before it (the domain's) is there too. A retry of the pair (a reconnect) sends both again, in
order, on the same connection.

Below the asked number of replicas within the timeout, `confirm` raises `NotReplicated` (HTTP
503 with Retry-After): the write is **kept** on the master and may still reach the replicas;
every money write is idempotent (issue by idempotency key, redeem by order reference, claim by
viewer), so the client's retry of the same request gets the same coupon and waits again.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import redis
from redis.cluster import RedisCluster

from .errors import DomainError

log = logging.getLogger(__name__)

FENCE_TTL_S = 86_400  # a fence key lives a day after its tag's last money write
_TAG = re.compile(r"\{([^{}]+)\}")


class NotReplicated(DomainError, redis.RedisError):
    """A write stored on its master but not confirmed on enough replicas in time (503).

    Also a RedisError: loops that retry on storage errors (the visit consumer leaves such an
    event unacknowledged, so it is handled again, idempotently) treat it as one. The HTTP and
    socket layers answer it as the DomainError it is first (503 + Retry-After).
    """

    code = "not_replicated"
    status = 503

    def __init__(self, message: str, *, retry_after: int = 1, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


def fence_key(key: str) -> str:
    """Return the fence key of `key`: under the same hash tag, so in the same slot."""
    match = _TAG.search(key)
    tag = match.group(1) if match else key
    return f"durable:{{{tag}}}"


class Durability:
    """Wait until the writes to a key's master have reached `replicas` replicas (0: never wait).

    `timeout_ms` bounds each wait (Redis' WAIT timeout; 0 would mean forever and is refused).
    """

    def __init__(
        self,
        r: redis.Redis | RedisCluster,
        replicas: int = 0,
        timeout_ms: int = 200,
        *,
        retry_after_s: int = 1,
    ) -> None:
        if replicas < 0:
            raise ValueError("replicas is 0 (off) or more")
        if replicas and not 1 <= timeout_ms <= 60_000:
            raise ValueError("the replica wait's timeout is 1 to 60000 ms")
        self.r = r
        self.replicas = replicas
        self.timeout_ms = timeout_ms
        self.retry_after_s = retry_after_s

    @property
    def enabled(self) -> bool:
        """Tell whether money writes wait for replicas."""
        return self.replicas > 0

    def confirm(self, *keys: str) -> None:
        """Return once the writes answered so far on the master of each key are on the asked
        number of replicas; raise NotReplicated otherwise (the writes stay). Keys of one node
        (on a single server: every key) share one wait."""
        if not self.replicas:
            return
        fences: dict[Any, str] = {}
        for key in keys:
            fence = fence_key(key)
            fences.setdefault(self._node_name(fence), fence)
        for fence in fences.values():
            self._confirm_one(fence)

    def _node_name(self, fence: str) -> str:
        if isinstance(self.r, RedisCluster):
            return self.r.get_node_from_key(fence).name
        return ""

    def _node_client(self, fence: str) -> redis.Redis:
        if isinstance(self.r, RedisCluster):
            # The plain client of the slot's master: its pipeline is one connection.
            return self.r.get_redis_connection(self.r.get_node_from_key(fence))
        return self.r

    def _confirm_one(self, fence: str) -> None:
        acked = None
        for attempt in (1, 2):
            pipe = self._node_client(fence).pipeline(transaction=False)
            pipe.set(fence, 1, ex=FENCE_TTL_S)
            pipe.wait(self.replicas, self.timeout_ms)
            try:
                acked = pipe.execute()[1]
                break
            except redis.exceptions.ResponseError as exc:
                # MOVED or READONLY: the slot's master changed (a failover) since the client
                # last looked. A keyed command through the cluster client follows the
                # redirection and refreshes its slot table; then the new master is asked.
                if attempt == 2 or not isinstance(self.r, RedisCluster):
                    raise NotReplicated(
                        "the write is stored but its master changed; retry",
                        retry_after=self.retry_after_s,
                    ) from exc
                self.r.exists(fence)
        if acked is None or int(acked) < self.replicas:
            log.warning(
                "replica wait: %s of %s replicas within %s ms",
                acked,
                self.replicas,
                self.timeout_ms,
                extra={"fence": fence},
            )
            raise NotReplicated(
                f"the write is stored but not yet on {self.replicas} replica(s); retry the "
                "same request (it is idempotent)",
                retry_after=self.retry_after_s,
            )
