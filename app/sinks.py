"""Deliver committed domain events to Socket.IO rooms (through the Redis message queue)."""

from __future__ import annotations

import logging
import queue
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import unquote

import redis
import socketio
from flask_socketio import SocketIO
from redis.backoff import ExponentialWithJitterBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot
from redis.exceptions import RedisClusterException
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
        self._publisher: redis.Redis | RedisCluster | None = None
        self._publisher_lock = threading.Lock()
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

    def queue_channel(self, data: dict[str, Any]) -> str:
        """The channel a queue message goes to (one channel on a single server)."""
        return self.channel

    def send_to_queue(self, publisher: Any, channel: str, message: str) -> None:
        """Publish one encoded queue message."""
        publisher.publish(channel, message)

    def _publish(self, data: dict[str, Any]) -> None:
        if not self._publish_slots.acquire(timeout=self.publish_wait_s):
            log.error(
                "socket.io queue: %d publishes already waiting on redis, dropped one",
                self.publish_connections,
            )
            return
        try:
            with self._publisher_lock:  # one client, however many publish at first
                if self._publisher is None:
                    self._publisher = self._redis_connect(max_connections=self.publish_connections)
            message = self.json.dumps(data)
            channel = self.queue_channel(data)
            for attempt in (1, 2):
                try:
                    self.send_to_queue(self._publisher, channel, message)
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
                for message in self.subscriber_messages(pubsub):
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

    def subscriber_messages(self, pubsub: Any) -> Iterator[dict[str, Any]]:
        """Yield what a subscriber connection receives. After `ping_interval_s` without
        traffic it is pinged; two intervals without any reply raise ConnectionError, so a
        connection that died without a FIN is noticed."""
        heard = time.monotonic()
        while True:
            message = pubsub.get_message(timeout=self.ping_interval_s)
            now = time.monotonic()
            if message is None:
                if now - heard > 2 * self.ping_interval_s:
                    raise redis.ConnectionError(f"no reply from redis for {now - heard:.0f} s")
                pubsub.ping()
                continue
            heard = now
            yield message

    @staticmethod
    def _run_hook(hook: Callable[[], None]) -> None:
        try:
            hook()
        except Exception:
            log.exception("socket.io queue: a resubscribed hook failed")


# Cluster mode: the Socket.IO queue is spread over this many shard channels (see
# ShardedQueueManager and docs/scaling.md).
QUEUE_SHARDS = 24
MAX_QUEUE_SHARDS = 1024


def shard_channels(base: str, count: int) -> list[str]:
    """Name the `count` shard channels of the queue: `<base>:{<k>-<j>}` for shard k, with the
    smallest j that puts the channel's hash slot into the k-th of `count` equal slices of the
    16384 slots. Every process derives the same names from `count` alone, and since a cluster
    gives each master contiguous ranges of slots, the shards spread over the masters in
    proportion to the slots they serve (24 shards: 8 on each of 3 equal masters, 6 on each of
    4, 4 on each of 6, 3 on each of 8)."""
    if not 1 <= count <= MAX_QUEUE_SHARDS:
        raise ValueError(f"the queue has 1 to {MAX_QUEUE_SHARDS} shards, not {count}")
    names = []
    for k in range(count):
        low, high = (
            k * REDIS_CLUSTER_HASH_SLOTS // count,
            (k + 1) * REDIS_CLUSTER_HASH_SLOTS // count,
        )
        j = 0
        while not low <= key_slot(f"{k}-{j}".encode()) < high:
            j += 1
        names.append(f"{base}:{{{k}-{j}}}")
    return names


def shard_key(data: dict[str, Any]) -> str:
    """What a queue message is sharded by: its room (an emit, a room's closing), else the
    namespace (an emit to a whole namespace), the connection (a disconnect, a remote join or
    leave) or the host (an ack's callback). Messages with the same key keep their order."""
    method = data.get("method")
    if method in {"emit", "close_room"}:
        room = data.get("room")
        if isinstance(room, list | tuple):
            room = room[0] if room else None
        if room is not None:
            return f"room:{room}"
        return f"namespace:{data.get('namespace') or '/'}"
    if method in {"disconnect", "enter_room", "leave_room"}:
        return f"room:{data.get('sid')}"  # the sid's own room: an emit to it shares the shard
    return f"host:{data.get('host_id')}"


def shard_channel_for(channels: Sequence[str], data: dict[str, Any]) -> str:
    """The shard channel of a queue message: its `shard_key`'s CRC-32 modulo the shards."""
    return channels[zlib.crc32(shard_key(data).encode()) % len(channels)]


class _Subscription:
    """One subscriber connection: the shard channels it holds on one node."""

    def __init__(self, client: RedisCluster, pubsub: Any, node: str, channels: list[str]):
        self.client = client  # the cluster client whose node pool lent the connection
        self.pubsub = pubsub
        self.node = node
        self.channels = set(channels)
        self.confirmed: set[str] = set()

    def close(self) -> None:
        try:
            self.pubsub.close()
        except (redis.RedisError, OSError):
            pass


class ShardedQueueManager(RedisQueueManager):
    """The Socket.IO message queue on a Redis/Valkey Cluster, with sharded pub/sub.

    Classic PUBLISH on a cluster is broadcast over the cluster bus to every node, so every node
    would carry every message. Here a message goes with SPUBLISH to one of `shards` shard
    channels (`shard_channels`), chosen by `shard_key` (its room): the master that serves the
    channel's slot, and that master only, delivers it to the processes. Every process
    subscribes to every shard channel, so any process hears any message; the shard only
    decides which node carries it (and messages of one room keep their order).

    Subscribing: the channels are grouped by the master that serves them, one connection per
    master (`SSUBSCRIBE` one channel at a time: a call takes channels of one slot only), each
    read by a task of its own that pings after `ping_interval_s` without traffic and gives
    the connection up after two intervals without a reply, like the single-server manager.
    When a connection fails (its master died, a failover, a slot moved away: the server then
    sends `sunsubscribe`), only its channels are subscribed again, on the node that serves
    them in a freshly read slot map, retried with a backoff from 0.1 s to `max_backoff_s`
    while the slots are not served. Once every channel is subscribed again, the `resubscribed`
    hooks run, as after the single-server manager's re-subscription.
    """

    name = "footfall-redis-cluster"

    def __init__(
        self,
        url: str,
        channel: str = QUEUE_CHANNEL,
        *,
        shards: int = QUEUE_SHARDS,
        max_pending: int = 1000,
        **options: Any,
    ) -> None:
        if not is_cluster_url(url):
            raise ValueError(f"sharded pub/sub needs a cluster URL, not {url!r}")
        super().__init__(url, channel, **options)
        self.shard_channels = shard_channels(channel, shards)
        # Messages read but not yet handled, from every connection: a full queue stops the
        # readers, so a slow process is pushed back on like the single-server listener.
        self.max_pending = max_pending

    def queue_channel(self, data: dict[str, Any]) -> str:
        return shard_channel_for(self.shard_channels, data)

    def send_to_queue(self, publisher: Any, channel: str, message: str) -> None:
        publisher.spublish(channel, message)

    def _listen(self) -> Iterator[Any]:
        events: queue.Queue[tuple[str, _Subscription, Any]] = queue.Queue(self.max_pending)
        subscriptions: list[_Subscription] = []
        unsubscribed = list(self.shard_channels)
        backoff = 0.1
        retry_at = 0.0
        whole = False  # every channel has been subscribed once
        lost = False  # a connection was lost since every channel was last subscribed
        while True:
            now = time.monotonic()
            if unsubscribed and now >= retry_at:
                made, unsubscribed = self._subscribe(unsubscribed, events)
                subscriptions.extend(made)
                if unsubscribed:
                    retry_at = now + backoff
                    backoff = min(backoff * 2, self.max_backoff_s)
            wait = max(retry_at - now, 0.01) if unsubscribed else self.ping_interval_s
            try:
                kind, subscription, value = events.get(timeout=wait)
            except queue.Empty:
                continue
            if kind == "message":
                yield value
            elif kind == "subscribed":
                subscription.confirmed.add(value)
                if not unsubscribed and all(s.confirmed >= s.channels for s in subscriptions):
                    backoff = 0.1
                    if not whole:
                        whole, lost = True, False
                        log.info(
                            "socket.io queue subscribed",
                            extra={"channel": self.channel, "shards": len(self.shard_channels)},
                        )
                    elif lost:
                        lost = False
                        log.info(
                            "socket.io queue subscribed again", extra={"channel": self.channel}
                        )
                        for hook in self.resubscribed:
                            self.server.start_background_task(self._run_hook, hook)
            elif kind == "lost" and subscription in subscriptions:
                log.warning(
                    "socket.io queue: lost %d shard channels on %s, subscribing again: %s",
                    len(subscription.channels),
                    subscription.node,
                    value,
                )
                subscriptions.remove(subscription)
                subscription.close()
                if all(s.client is not subscription.client for s in subscriptions):
                    subscription.client.close()
                unsubscribed.extend(sorted(subscription.channels))
                lost = True
                retry_at = time.monotonic() + backoff

    def _subscribe(
        self, channels: list[str], events: queue.Queue
    ) -> tuple[list[_Subscription], list[str]]:
        """Subscribe `channels` on the masters that serve them now; return the subscriptions
        made (each with its reader started) and the channels left for a later try."""
        try:
            client = self._redis_connect()  # a fresh slot map
            by_node: dict[str, tuple[Any, list[str]]] = {}
            for channel in channels:
                node = client.get_node_from_key(channel)
                by_node.setdefault(node.name, (node, []))[1].append(channel)
        except (redis.RedisError, RedisClusterException, OSError) as exc:
            log.warning("socket.io queue: cannot read the cluster's slots: %s", exc)
            return [], channels
        made, left = [], []
        for node, node_channels in by_node.values():
            subscription = None
            try:
                pubsub = client.get_redis_connection(node).pubsub()
                subscription = _Subscription(client, pubsub, node.name, node_channels)
                for channel in node_channels:  # one slot per SSUBSCRIBE
                    pubsub.ssubscribe(channel)
            except (redis.RedisError, RedisClusterException, OSError) as exc:
                log.warning("socket.io queue: cannot subscribe on %s: %s", node.name, exc)
                if subscription is not None:
                    subscription.close()
                left.extend(node_channels)
                continue
            made.append(subscription)
            self.server.start_background_task(self._read, subscription, events)
        if not made:
            client.close()
        return made, left

    def _read(self, subscription: _Subscription, events: queue.Queue) -> None:
        """Read one subscriber connection until it fails; hand everything to `_listen`."""
        try:
            for message in self.subscriber_messages(subscription.pubsub):
                kind = message["type"]
                if kind == "smessage":
                    events.put(("message", subscription, message["data"]))
                elif kind == "ssubscribe":
                    channel = message["channel"]
                    if isinstance(channel, bytes):
                        channel = channel.decode()
                    events.put(("subscribed", subscription, channel))
                elif kind == "sunsubscribe":  # the slot moved away from this node
                    raise redis.ConnectionError(f"{subscription.node} dropped {message['channel']}")
        except Exception as exc:  # any failure ends this connection
            events.put(("lost", subscription, exc))


def queue_manager(url: str, *, shards: int = QUEUE_SHARDS, **options: Any) -> RedisQueueManager:
    """The Socket.IO queue manager for a Redis URL: sharded pub/sub over `shards` shard
    channels on a cluster URL, classic pub/sub on channel `flask-socketio` otherwise."""
    if is_cluster_url(url):
        return ShardedQueueManager(url, shards=shards, **options)
    return RedisQueueManager(url, **options)
