"""Redis key names of the geo package, with their hash tags.

The store catalog lives under one hash tag, `{geo}`, so that a bulk import is one transaction on
one slot. Each shopper's location state lives under `{s:<id>}`, so the state transition script
touches keys of one slot only. The event stream and the pending-exit index are single keys.
"""

CATALOG = "geo:{geo}"
STORES = f"{CATALOG}:stores"  # hash: store id -> store JSON (with its fence)
IDS = f"{CATALOG}:ids"  # sorted set (all scores 0): ids in lexical order, for paging
STORE_LOC = f"{CATALOG}:loc"  # GEO set: store locations, for "nearby"
VERSION = f"{CATALOG}:version"  # counter bumped by every catalog change (fence caches)
# Reach (extent + hysteresis) bounds of the fence indexes. Fine tiers keep the candidate count
# low in dense streets: a 60 m fence is searched within ~100 m, not within the largest reach.
TIERS = (100.0, 200.0, 400.0, 1_500.0, 6_000.0)
EVENTS = "geo:events"  # stream: enter / dwell / exit / transit, consumed by promotions and game
PENDING_EXITS = "geo:pending_exits"  # sorted set: "shopper|store" -> exit deadline


def fence_index(tier: int) -> str:
    """Return the GEO set of fence anchors whose reach fits tier `tier`."""
    return f"{CATALOG}:fences:{tier}"


def by_city(city: str) -> str:
    """Return the index of store ids in one city."""
    return f"{CATALOG}:city:{city.lower()}"


def by_brand(brand: str) -> str:
    """Return the index of store ids of one brand."""
    return f"{CATALOG}:brand:{brand.lower()}"


def shopper(shopper_id: str) -> str:
    """Return the hash-tagged prefix of one shopper's keys."""
    return f"geo:{{s:{shopper_id}}}"


def shopper_state(shopper_id: str) -> str:
    """Hash: consent, last fix time, trust score, CAS version, outbox time (no coordinates)."""
    return f"{shopper(shopper_id)}:st"


def shopper_fences(shopper_id: str) -> str:
    """Hash: store id -> state of the shopper in that fence (only fences not 'outside')."""
    return f"{shopper(shopper_id)}:fs"


def shopper_fixes(shopper_id: str) -> str:
    """Sorted set: raw fixes scored by recorded time; trimmed to the retention, expiring."""
    return f"{shopper(shopper_id)}:fixes"


def shopper_outbox(shopper_id: str) -> str:
    """List: events committed with the state but not yet appended to the stream."""
    return f"{shopper(shopper_id)}:outbox"


def shopper_position(shopper_id: str) -> str:
    """Hash: last fix and last trusted fix (the spoof anchor); expires with the raw fixes."""
    return f"{shopper(shopper_id)}:pos"
