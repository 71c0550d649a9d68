"""The Socket.IO packet class Footfall's server decodes with (python-socketio's `serializer`).

Footfall's protocol has no binary events, and its events are small. python-socketio would buffer
the attachments a binary event announces (any number of them, each up to the transport's limit)
until the last one arrives, and would parse a text event of any size the transport lets through.
This class decides before anything is buffered or parsed:

- a binary event or ack is refused: the connection hears an `error` event
  (`binary_not_accepted`) and is closed; an attachment frame on its own is dropped;
- a text event longer than `MAX_EVENT_BYTES` is not parsed: its ack (and an `error` event) say
  `payload_too_large`, and the connection stays.

A refused packet reaches the namespace as an event whose name is a `Refused` (never a string,
so no client can send one); `SecureNamespace` answers it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from socketio import packet

# A text event's encoded packet (name, namespace and ack id included) may be this long; the
# namespace checks the payload itself against SecureNamespace.max_payload_bytes (16 KB) after
# parsing. Longer packets are refused without being parsed.
MAX_EVENT_BYTES = 17 * 1024

_EVENT_NAME = re.compile(r'\["((?:[^"\\]|\\.){0,100})"')


@dataclass(frozen=True)
class Refused:
    """An event the packet layer refused: why, and the event's name when it could be read."""

    code: str
    message: str
    event: str | None = None
    close: bool = False

    def __str__(self) -> str:
        return f"<refused {self.code}>"


class FootfallPacket(packet.Packet):
    """Socket.IO's default packet format, refusing binary and oversized events unparsed."""

    def decode(self, encoded_packet: str | bytes) -> int:
        """Decode a packet; turn a refused one into a `Refused` event (no attachments)."""
        if isinstance(encoded_packet, bytes):
            # A binary attachment on its own (its event was refused and the connection is
            # closing): drop it. A disconnect from "/" is a no-op for Footfall's clients.
            self.packet_type, self.namespace, self.data = packet.DISCONNECT, "/", None
            return 0
        kind = encoded_packet[:1]
        if kind in (str(packet.BINARY_EVENT), str(packet.BINARY_ACK)):
            self._refuse(
                encoded_packet,
                Refused(
                    "binary_not_accepted",
                    "binary events are not accepted; the connection is closed",
                    close=True,
                ),
            )
            return 0
        if kind == str(packet.EVENT) and len(encoded_packet) > MAX_EVENT_BYTES:
            self._refuse(
                encoded_packet,
                Refused("payload_too_large", f"an event may be at most {MAX_EVENT_BYTES} bytes"),
            )
            return 0
        return super().decode(encoded_packet)

    def _refuse(self, encoded_packet: str, refused: Refused) -> None:
        # Read only the header (type, attachments, namespace, ack id): never the payload.
        head, bracket, rest = encoded_packet[:200].partition("[")
        super().decode(head)
        name = _EVENT_NAME.match(bracket + rest)
        event = None
        if name:
            try:
                event = json.loads(f'"{name.group(1)}"')
            except ValueError:
                event = None
        self.packet_type = packet.EVENT
        self.data = [Refused(refused.code, refused.message, event, refused.close)]
