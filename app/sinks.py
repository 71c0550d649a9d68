"""Deliver committed domain events to Socket.IO rooms (through the Redis message queue)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import unquote

import redis
import socketio
from flask_socketio import SocketIO
from redis.backoff import ExponentialWithJitterBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry
from redis.sentinel import Sentinel
from socketio.redis_manager import parse_redis_sentinel_url

from geo.engine import EventSink

log = logging.getLogger(__name__)

# Flask-SocketIO's default channel, so processes with and without this manager interoperate.
QUEUE_CHANNEL = "flask-socketio"


def shopper_room(shopper_id: str) -> str:
    """Return the private room of one shopper."""
    return f"shopper:{shopper_id}"


class SocketEventSink(EventSink):
    """Push geofence events to the shopper's private room on /shopper."""

    def __init__(self, socketio: SocketIO) -> None:
        self.socketio = socketio

    def publish(self, shopper_id: str, events: Sequence[dict[str, Any]]) -> None:
        """Emit each event as `geofence` to the shopper's room on any process."""
        for event in events:
            self.socketio.emit("geofence", event, to=shopper_room(shopper_id), namespace="/shopper")


class SocketCouponNotifier:
    """Announce a newly issued coupon to its shopper's room on /shopper (any process)."""

    def __init__(self, socketio: SocketIO) -> None:
        self.socketio = socketio

    def coupon_issued(self, shopper_id: str, coupon: dict[str, Any]) -> None:
        """Emit `coupon_issued` with the coupon (without its token: the wallet serves that)."""
        self.socketio.emit(
            "coupon_issued", coupon, to=shopper_room(shopper_id), namespace="/shopper"
        )


class SocketGameNotifier:
    """Send game events (rare_spawn, catch_result, reward, game_warning) to a shopper's room."""

    def __init__(self, socketio: SocketIO) -> None:
        self.socketio = socketio

    def game_event(self, shopper_id: str, name: str, payload: dict[str, Any]) -> None:
        """Emit one game event to the shopper's room on /shopper (any process)."""
        self.socketio.emit(name, payload, to=shopper_room(shopper_id), namespace="/shopper")


class LocalDeliveries(socketio.Manager):
    """The one place where this process emits to its own clients, with filters that may skip.

    PubSubManager hands both an emit made here and one heard on the queue to its parent's
    `emit`; placed between PubSubManager and Manager in the class order, this sees both.
    """

    def __init__(self) -> None:
        super().__init__()
        self.delivery_filters: list[Callable[[str, Any, str, str | None], bool]] = []

    def emit(
        self, event, data, namespace, room=None, skip_sid=None, callback=None, to=None, **kwargs
    ):
        room = to or room
        if callback is None and not all(
            allow(event, data, namespace or "/", room) for allow in self.delivery_filters
        ):
            return None
        return super().emit(
            event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, **kwargs
        )


# Cluster mode: how often a command is tried again after a connection error, a timeout,
# CLUSTERDOWN or an uncovered slot (a failover in progress), with this backoff between tries
# (about 2 s in all), before the error reaches the caller (an HTTP 503 + Retry-After).
# MOVED and ASK redirections are followed by redis-py itself and use none of these tries.
CLUSTER_RETRIES = 6
CLUSTER_BACKOFF_BASE_S = 0.05
CLUSTER_BACKOFF_CAP_S = 0.5

CLUSTER_SCHEMES = {"redis+cluster", "valkey+cluster", "rediss+cluster", "valkeys+cluster"}


def is_cluster_url(url: str) -> bool:
    """Tell whether a URL selects Redis/Valkey Cluster mode (redis+cluster://h:p,h:p)."""
    return url.partition("://")[0].lower() in CLUSTER_SCHEMES


def cluster_connect(url: str, **options: Any) -> RedisCluster:
    """Connect to a Redis/Valkey Cluster given `redis+cluster://[user:pass@]h1:p1,h2:p2,...`
    (or valkey+cluster://; rediss+cluster:// and valkeys+cluster:// for TLS). Every listed node
    is a startup node; the client learns the rest of the cluster from any one of them.

    Options are those of a single-server client (socket timeouts, keepalive, max_connections,
    which bounds each node's pool). A command is retried `CLUSTER_RETRIES` times with a jittered
    exponential backoff after connection errors, timeouts and CLUSTERDOWN, unless `retry` is
    given.
    """
    scheme, _, rest = url.partition("://")
    scheme = scheme.lower()
    netloc, _, path = rest.partition("/")
    if path.strip("/") not in {"", "0"}:
        raise ValueError(f"a cluster has only database 0: {url!r}")
    auth: dict[str, Any] = {}
    userinfo, at, hosts = netloc.rpartition("@")
    if at:
        user, colon, password = userinfo.partition(":")
        auth = {"username": unquote(user) or None, "password": unquote(password) if colon else None}
    nodes = []
    for item in hosts.split(","):
        host, colon, port = item.strip().rpartition(":")
        if not colon or not host or not port.isdigit():
            raise ValueError(f"a cluster URL lists host:port pairs: {url!r}")
        nodes.append(ClusterNode(host.strip("[]"), int(port)))
    if scheme.startswith(("rediss", "valkeys")):
        auth["ssl"] = True
    options.setdefault(
        "retry",
        Retry(
            ExponentialWithJitterBackoff(base=CLUSTER_BACKOFF_BASE_S, cap=CLUSTER_BACKOFF_CAP_S),
            CLUSTER_RETRIES,
        ),
    )
    # health_check_interval is not passed to cluster nodes by redis-py; dropped silently there.
    options.pop("health_check_interval", None)
    return RedisCluster(startup_nodes=nodes, **auth, **options)


def redis_connect(url: str, **options: Any) -> redis.Redis | RedisCluster:
    """Connect to Redis or Valkey given a redis://, rediss://, unix://, valkey://, valkeys://,
    redis+sentinel:// or valkey+sentinel:// URL (the last two: `host:port,...` of the
    sentinels, then `/db/service`, as python-socketio's RedisManager reads them), or a
    cluster URL, redis+cluster:// or valkey+cluster:// (see `cluster_connect`).

    Valkey speaks the Redis protocol, so redis-py serves both. `max_connections` bounds the
    client's pool (for a sentinel URL, the pool of the master it finds; for a cluster, the pool
    of each node).
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a redis URL: {url!r}")
    scheme = scheme.lower()
    if scheme in CLUSTER_SCHEMES:
        return cluster_connect(url, **options)
    if scheme in {"redis+sentinel", "valkey+sentinel"}:
        sentinels, service, auth = parse_redis_sentinel_url("redis+sentinel://" + rest)
        sentinel_options = {k: v for k, v in options.items() if k.startswith("socket_")}
        sentinel = Sentinel(sentinels, sentinel_kwargs=sentinel_options, **auth, **options)
        return sentinel.master_for(service or "mymaster")
    scheme = {"valkey": "redis", "valkeys": "rediss"}.get(scheme, scheme)
    if scheme not in {"redis", "rediss", "unix"}:
        raise ValueError(f"unsupported redis URL scheme: {scheme!r}")
    return redis.Redis.from_url(f"{scheme}://{rest}", **options)


class RedisQueueManager(socketio.PubSubManager, LocalDeliveries):
    """The Socket.IO message queue on Redis pub/sub (python-socketio's documented extension
    point: a PubSubManager that implements `_publish` and `_listen`).

    python-socketio's own RedisManager blocks in pubsub.listen() with no timeout: a connection
    that dies without a FIN/RST (a NAT or load-balancer idle timeout, a lost host, a failover)
    leaves the process deaf for good while Redis still counts it as subscribed; after an outage
    it backs off 1, 2, 4 ... 60 s before subscribing again, and its publisher has no timeout.

    Here the listener waits at most `ping_interval_s` for traffic, then pings; no reply within
    two intervals means a new connection. Re-subscribing backs off from 0.1 s to
    `max_backoff_s`, and each re-subscription (not the first) runs the `resubscribed` hooks,
    so a process can deliver what its clients missed meanwhile. Publishing goes through one
    bounded pool (`publish_connections`, waiting at most `publish_wait_s` for a free
    connection) with connect/read timeouts and TCP keepalive. Every connection is made by
    `redis_connect`, which reads redis, valkey and sentinel URLs.

    An emit addressed to one connection of this process (an ack's `error` event, a reply) is
    delivered here without a round trip through Redis: no other process can hold it.
    """

    name = "footfall-redis"

    def __init__(
        self,
        url: str,
        channel: str = QUEUE_CHANNEL,
        *,
        write_only: bool = False,
        ping_interval_s: float = 5.0,
        max_backoff_s: float = 2.0,
        publish_connections: int = 16,
        publish_wait_s: float = 5.0,
        redis_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(channel=channel, write_only=write_only)  # and LocalDeliveries'
        self.url = url
        self.redis_options: dict[str, Any] = {
            "socket_connect_timeout": 2.0,
            "socket_timeout": 5.0,
            "socket_keepalive": True,
            **(redis_options or {}),
        }
        self.ping_interval_s = ping_interval_s
        self.max_backoff_s = max_backoff_s
        self.publish_connections = publish_connections
        self.publish_wait_s = publish_wait_s
        self.resubscribed: list[Callable[[], None]] = []
        self._publisher: redis.Redis | None = None
        # At most this many publishes at once: the pool never needs more connections, and a
        # burst waits its turn instead of failing with "Too many connections".
        self._publish_slots = threading.BoundedSemaphore(publish_connections)

    def _redis_connect(self, **options: Any) -> redis.Redis:
        """Make a connection to the queue's Redis (every connection is made here)."""
        return redis_connect(self.url, **{**self.redis_options, **options})

    def emit(
        self,
        event,
        data,
        namespace=None,
        room=None,
        skip_sid=None,
        callback=None,
        to=None,
        **kwargs,
    ):
        room = to or room
        if (
            callback is None
            and not kwargs.get("ignore_queue")
            and room is not None
            and self.is_connected(room, namespace or "/")
        ):
            kwargs["ignore_queue"] = True
        return super().emit(
            event,
            data,
            namespace=namespace,
            room=room,
            skip_sid=skip_sid,
            callback=callback,
            **kwargs,
        )

    def _publish(self, data: dict[str, Any]) -> None:
        if not self._publish_slots.acquire(timeout=self.publish_wait_s):
            log.error(
                "socket.io queue: %d publishes already waiting on redis, dropped one",
                self.publish_connections,
            )
            return
        try:
            if self._publisher is None:
                self._publisher = self._redis_connect(max_connections=self.publish_connections)
            message = self.json.dumps(data)
            for attempt in (1, 2):
                try:
                    self._publisher.publish(self.channel, message)
                    return
                except (redis.RedisError, OSError) as exc:
                    log.error(
                        "socket.io queue: cannot publish to redis (attempt %d): %s", attempt, exc
                    )
        finally:
            self._publish_slots.release()

    def _listen(self) -> Iterator[Any]:
        channel = self.channel.encode()
        backoff = 0.1
        subscriptions = 0
        while True:
            client = self._redis_connect()
            pubsub = client.pubsub()
            try:
                pubsub.subscribe(self.channel)
                heard = time.monotonic()
                while True:
                    message = pubsub.get_message(timeout=self.ping_interval_s)
                    now = time.monotonic()
                    if message is None:
                        if now - heard > 2 * self.ping_interval_s:
                            raise redis.ConnectionError(
                                f"no reply from redis for {now - heard:.0f} s"
                            )
                        pubsub.ping()
                        continue
                    heard = now
                    if message["type"] == "subscribe":
                        backoff = 0.1
                        subscriptions += 1
                        log.info("socket.io queue subscribed", extra={"channel": self.channel})
                        if subscriptions > 1:
                            for hook in self.resubscribed:
                                self.server.start_background_task(self._run_hook, hook)
                    elif message["type"] == "message" and message["channel"] == channel:
                        yield message["data"]
            except (redis.RedisError, OSError) as exc:
                log.warning(
                    "socket.io queue: cannot receive from redis, retrying in %.1f s: %s",
                    backoff,
                    exc,
                )
            finally:
                pubsub.close()
                client.close()
            self.server.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff_s)

    @staticmethod
    def _run_hook(hook: Callable[[], None]) -> None:
        try:
            hook()
        except Exception:
            log.exception("socket.io queue: a resubscribed hook failed")
