"""Deliver committed domain events to Socket.IO rooms (through the Redis message queue)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask_socketio import SocketIO

from geo.engine import EventSink


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
