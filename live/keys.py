"""Redis key names of the live package, with their hash tags.

Everything of one stream (its record, products and images now; later its chat, polls, drops,
presence and history) lives under the tag `{l:<stream id>}`, so the scripts that guard its
state touch one slot.
"""

SEQ = "live:seq"  # counter: the next stream id
STREAMS = "live:streams"  # sorted set: stream id -> scheduled start (listing)
LIVE = "live:now"  # set: ids of the streams that are live (the rooms' periodic work)


def stream(sid: str) -> str:
    """Return the hash-tagged prefix of one stream's keys."""
    return f"live:{{l:{sid}}}"


def meta(sid: str) -> str:
    """Hash: doc (JSON), status, status_at, product_seq."""
    return f"{stream(sid)}:meta"


def products(sid: str) -> str:
    """Hash: product id -> product JSON."""
    return f"{stream(sid)}:products"


def images(sid: str) -> str:
    """Hash: '<product id>:image' / '<product id>:thumb' -> JPEG, base64."""
    return f"{stream(sid)}:images"


def consoles(sid: str) -> str:
    """Hash: open host console (Socket.IO connection id) -> the host's account id."""
    return f"{stream(sid)}:consoles"


def grants(sid: str) -> str:
    """Set: ids of the campaigns whose offers the stream may drop (granted by marketers)."""
    return f"{stream(sid)}:grants"
