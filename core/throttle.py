"""Every per-client limit in one place: the `limits` library's moving window on the app's Redis.

A `Rule` names a limit (`limit` hits per `window_s` seconds, sliding); `Throttle.hit` counts one
hit for an identifier (an account, an address, a till) and raises `RateLimited` with the real
time until a hit is allowed again (the Retry-After). A refused hit is not counted, so hammering
a closed limit does not extend it.

The counters are `limits`' moving windows: one Redis list per rule and identifier, named
`throttle:<rule>/<identifier>/<limit>/<window>/second` (changing a rule's limit or window starts
fresh counters), checked and appended by one Lua script on that one key, so a hit is atomic
across processes and the scheme works unchanged on Redis Cluster (one key per script call;
`limits.storage.RedisClusterStorage` takes a cluster URL). The window is measured with each
process's wall clock (`time.time()`), not the app's injectable clock: tests use short windows.

Domain packages use this module too (promotions' invalid-code limit): it imports no flask.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis
from limits import RateLimitItemPerSecond
from limits.storage import RedisClusterStorage, RedisStorage
from limits.strategies import MovingWindowRateLimiter
from redis.exceptions import LockError

from core.errors import RateLimited

PREFIX = "throttle"

# `limits`' cluster storage builds its own RedisCluster client (it takes a URL, not a client),
# and a cluster client's start costs a round of CLUSTER SLOTS and COMMAND (tens of ms). Every
# Throttle of a process on the same cluster and prefix shares one storage (a client is safe to
# share between threads and greenlets, like the app's own client).
_cluster_storages: dict[tuple[str, str], RedisClusterStorage] = {}
_cluster_storages_lock = threading.Lock()


def _cluster_storage(nodes: str, prefix: str) -> RedisClusterStorage:
    with _cluster_storages_lock:
        storage = _cluster_storages.get((nodes, prefix))
        if storage is None:
            storage = RedisClusterStorage(
                f"redis+cluster://{nodes}",
                key_prefix=prefix,
                socket_connect_timeout=1.0,
                socket_timeout=5.0,
            )
            _cluster_storages[(nodes, prefix)] = storage
        return storage


@dataclass(frozen=True)
class Rule:
    """A sliding-window limit and the error a caller over it gets."""

    name: str
    limit: int
    window_s: int
    message: str = "too many requests; wait before trying again"
    code: str = "rate_limited"
    field: str | None = None

    def item(self) -> RateLimitItemPerSecond:
        """Return the `limits` item of this rule."""
        return RateLimitItemPerSecond(self.limit, self.window_s, namespace=self.name)


class Throttle:
    """Count hits against rules on Redis, and serialize checks that must be atomic."""

    def __init__(self, r: redis.Redis, *, prefix: str = PREFIX) -> None:
        self.r = r
        storage: RedisStorage
        if isinstance(r, redis.RedisCluster):
            # `limits` builds its own cluster client from the nodes the app's client knows.
            nodes = ",".join(sorted(f"{node.host}:{node.port}" for node in r.get_nodes()))
            storage = _cluster_storage(nodes, prefix)
        else:
            # The storage shares the app's (bounded) connection pool; the URL only names the
            # client library, the pool decides where it connects.
            storage = RedisStorage("redis://", connection_pool=r.connection_pool, key_prefix=prefix)
        self._limiter = MovingWindowRateLimiter(storage)
        self._prefix = prefix

    def hit(self, rule: Rule, ident: str) -> None:
        """Count one hit; raise RateLimited (not counting it) when the window is full."""
        if not self._limiter.hit(rule.item(), ident):
            raise self._refusal(rule, ident)

    def check(self, rule: Rule, ident: str) -> None:
        """Raise RateLimited when the window is full, without counting a hit."""
        if not self._limiter.test(rule.item(), ident):
            raise self._refusal(rule, ident)

    def remaining(self, rule: Rule, ident: str) -> int:
        """Return how many hits the window still allows."""
        return self._limiter.get_window_stats(rule.item(), ident).remaining

    def retry_after(self, rule: Rule, ident: str) -> int:
        """Return the whole seconds until the window allows a hit again (at least 1)."""
        reset = self._limiter.get_window_stats(rule.item(), ident).reset_time
        return max(1, math.ceil(reset - time.time()))

    def reset(self, rule: Rule, ident: str) -> None:
        """Forget the hits of one identifier (a successful login clears its account's)."""
        self._limiter.clear(rule.item(), ident)

    @contextmanager
    def exclusive(
        self,
        name: str,
        *,
        wait_s: float = 5.0,
        lease_s: float = 10.0,
        busy: RateLimited | None = None,
    ) -> Iterator[None]:
        """Run the block while holding a Redis lock on `name` (across processes).

        A check-then-count sequence (look at a limit, do the work, count a failure) is atomic
        only if one caller at a time runs it for the same identifier; parallel callers wait up
        to `wait_s`, then get `busy` (a RateLimited).
        """
        lock = self.r.lock(
            f"{self._prefix}:lock:{name}", timeout=lease_s, sleep=0.005, blocking_timeout=wait_s
        )
        if not lock.acquire():
            raise busy or RateLimited("busy; try again", retry_after=1)
        try:
            yield
        finally:
            try:
                lock.release()
            except LockError:
                pass  # the lease ran out first: the work took longer than lease_s

    def _refusal(self, rule: Rule, ident: str) -> RateLimited:
        return RateLimited(
            rule.message,
            code=rule.code,
            field=rule.field,
            retry_after=self.retry_after(rule, ident),
        )
