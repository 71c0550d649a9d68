"""Every offset of a live room, once, to the viewers of this process — also across an outage.

A live broadcast reaches this process's viewers either from here (its host is connected here)
or through the Redis queue. While Redis is away and until this process has subscribed again,
broadcasts published by other processes are lost to it. So, per live room with viewers here,
`LiveDeliveries` keeps which offsets it has delivered; after each re-subscription it reads the
room's history from the last offset delivered and sends what is missing, and it lets through no
offset twice (a broadcast may come both through the queue and from the history).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger(__name__)

MAX_AHEAD = 1_000  # offsets remembered above the contiguous mark before the gap is given up


class Delivered:
    """The offsets one room has delivered: all up to `mark`, and those in `ahead`."""

    def __init__(self, mark: int) -> None:
        self.mark = mark
        self.ahead: set[int] = set()

    def add(self, offset: int) -> bool:
        """Record an offset; return False when it was delivered before."""
        if offset <= self.mark or offset in self.ahead:
            return False
        self.ahead.add(offset)
        while self.mark + 1 in self.ahead:
            self.mark += 1
            self.ahead.discard(self.mark)
        if len(self.ahead) > MAX_AHEAD:  # a gap nothing will fill: give it up
            self.mark = min(self.ahead)
            self.ahead = {o for o in self.ahead if o > self.mark}
        return True


class LiveDeliveries:
    """Per live room of this process: de-duplicate broadcasts on their offset and catch up."""

    def __init__(self, namespace: str = "/live", prefix: str = "live:") -> None:
        self.namespace = namespace
        self.prefix = prefix
        self.rooms: dict[str, Delivered] = {}
        self.lock = threading.Lock()

    def joined(self, room: str, offset: int) -> None:
        """A viewer joined `room` current to `offset` (its join ack); start tracking the room."""
        with self.lock:
            self.rooms.setdefault(room, Delivered(offset))

    def allow(self, event: str, data: Any, namespace: str, room: str | None) -> bool:
        """Delivery filter (RedisQueueManager): False for an offset this room already got."""
        if namespace != self.namespace or not room or not room.startswith(self.prefix):
            return True
        offset = data.get("offset") if isinstance(data, dict) else None
        if not isinstance(offset, int):
            return True
        with self.lock:
            delivered = self.rooms.get(room)
            return True if delivered is None else delivered.add(offset)

    def catch_up(self, socketio: Any, history: Any) -> int:
        """Send each tracked room's viewers here what the history has after the room's mark
        (the filter drops what they had); return how many events were read. Rooms without
        viewers here are forgotten."""
        manager = socketio.server.manager
        sent = 0
        for room in list(self.rooms):
            try:
                viewer = next(iter(manager.get_participants(self.namespace, room)), None)
            except KeyError:
                viewer = None
            if viewer is None:
                with self.lock:
                    self.rooms.pop(room, None)
                continue
            delivered = self.rooms[room]
            missed = history.since(room[len(self.prefix) :], delivered.mark)
            if missed.too_far:
                log.warning("live room %s: too far behind to catch up", room)
                with self.lock:
                    self.rooms[room] = Delivered(missed.offset)
                continue
            for entry in missed.events:
                # Through the delivery filter like any broadcast: sent unless already sent.
                socketio.emit(
                    entry["event"],
                    {**entry["data"], "offset": entry["offset"]},
                    to=room,
                    namespace=self.namespace,
                    ignore_queue=True,
                )
                sent += 1
        return sent
