"""Deliver committed domain events to Socket.IO rooms (through the Redis message queue)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

import redis
import socketio
from flask_socketio import SocketIO

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
            self.socketio.emit("geofence", event, to=shopper_room(shopper_id),
                               namespace="/shopper")


class SocketCouponNotifier:
    """Announce a newly issued coupon to its shopper's room on /shopper (any process)."""

    def __init__(self, socketio: SocketIO) -> None:
        self.socketio = socketio

    def coupon_issued(self, shopper_id: str, coupon: dict[str, Any]) -> None:
        """Emit `coupon_issued` with the coupon (without its token: the wallet serves that)."""
        self.socketio.emit("coupon_issued", coupon, to=shopper_room(shopper_id),
                           namespace="/shopper")


class SocketGameNotifier:
    """Send game events (rare_spawn, catch_result, reward, game_warning) to a shopper's room."""

    def __init__(self, socketio: SocketIO) -> None:
        self.socketio = socketio

    def game_event(self, shopper_id: str, name: str, payload: dict[str, Any]) -> None:
        """Emit one game event to the shopper's room on /shopper (any process)."""
        self.socketio.emit(name, payload, to=shopper_room(shopper_id), namespace="/shopper")


class RedisQueueManager(socketio.RedisManager):
    """python-socketio's RedisManager with a listener that notices a dead connection at once.

    The stock listener blocks in pubsub.listen() with no timeout: a connection that dies without
    a FIN/RST (a NAT or load-balancer idle timeout, a lost host, a failover) leaves the process
    deaf for good while Redis still counts it as subscribed. After an outage it backs off
    1, 2, 4 ... 60 s before subscribing again, and every event meant for this process's clients
    in the meantime is dropped. Its publisher has no socket timeout either, so an emit from a
    request handler can hang on a silent server.

    Here the listener waits at most `ping_interval_s` for traffic, then pings; no reply within
    two intervals means a new connection. Re-subscribing backs off from 0.1 s to
    `max_backoff_s`. Publishing gets connect/read timeouts and TCP keepalive.
    """

    def __init__(
        self,
        url: str,
        channel: str = QUEUE_CHANNEL,
        *,
        write_only: bool = False,
        ping_interval_s: float = 5.0,
        max_backoff_s: float = 2.0,
        redis_options: dict[str, Any] | None = None,
    ) -> None:
        options: dict[str, Any] = {
            "socket_connect_timeout": 2.0,
            "socket_timeout": 5.0,
            "socket_keepalive": True,
        }
        options.update(redis_options or {})
        super().__init__(url, channel=channel, write_only=write_only, redis_options=options)
        self.ping_interval_s = ping_interval_s
        self.max_backoff_s = max_backoff_s

    def _listen(self) -> Iterator[bytes]:
        channel = self.channel.encode()
        backoff = 0.1
        while True:
            client = redis.Redis.from_url(self.redis_url, **self.redis_options)
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
                        log.info("socket.io queue subscribed", extra={"channel": self.channel})
                    elif message["type"] == "message" and message["channel"] == channel:
                        yield message["data"]
            except (redis.RedisError, OSError) as exc:
                log.warning("socket.io queue: cannot receive from redis, retrying in %.1f s: %s",
                            backoff, exc)
            finally:
                pubsub.close()
                client.close()
            self.server.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff_s)
