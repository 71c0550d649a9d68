"""Redis key names of the geo package, with their hash tags.

The store catalog lives under one hash tag, `{geo}`, so that a bulk import is one transaction on
one slot (no fix reads it: each process searches its own copy, geo.fence_index). Each shopper's
location state lives under `{s:<id>}`, so the state transition script touches keys of one slot
only. The event stream and the pending-exit index are partitioned by shopper: partition k of P
has its own hash tag, chosen so that the P tags fall in P equal ranges of the 16384 slots: a
cluster whose masters hold equal slot ranges then holds P/masters partitions each (P = 16 on 3
masters: 6/5/5, where the plain tags {e0}..{e15} would give 8/4/4).
"""

import functools
import itertools
import zlib

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

CATALOG = "geo:{geo}"
STORES = f"{CATALOG}:stores"  # hash: store id -> store JSON (with its fence)
IDS = f"{CATALOG}:ids"  # sorted set (all scores 0): ids in lexical order, for paging
STORE_LOC = f"{CATALOG}:loc"  # GEO set: store locations, for "nearby"
VERSION = f"{CATALOG}:version"  # counter bumped by every catalog change (fence caches)
# Reach (extent + hysteresis) bounds of the fence indexes. Fine tiers keep the candidate count
# low in dense streets: a 60 m fence is searched within ~100 m, not within the largest reach.
TIERS = (100.0, 200.0, 400.0, 1_500.0, 6_000.0)
EVENT_PARTITIONS = 16  # default P (config GEO_EVENT_PARTITIONS); every process must agree
# The single stream and index of releases before the partitions: nothing writes them any more;
# consumers drain what is left in them (new and pending entries), the sweeper sweeps the index.
LEGACY_EVENTS = "geo:events"
LEGACY_PENDING_EXITS = "geo:pending_exits"


def partition(shopper_id: str, partitions: int) -> int:
    """Return the event partition of a shopper: crc32 of the id modulo P (stable everywhere)."""
    return zlib.crc32(shopper_id.encode()) % partitions


@functools.cache
def partition_tag(k: int, partitions: int) -> str:
    """Return the hash tag of partition k of P: `e<k>.<n>` with the first n whose slot lies in
    the k-th of P equal slot ranges (deterministic, the same in every process)."""
    low = k * REDIS_CLUSTER_HASH_SLOTS // partitions
    high = (k + 1) * REDIS_CLUSTER_HASH_SLOTS // partitions
    for n in itertools.count():
        tag = f"e{k}.{n}"
        if low <= key_slot(tag.encode()) < high:
            return tag
    raise AssertionError("unreachable")  # itertools.count() never ends


def events(k: int, partitions: int = EVENT_PARTITIONS) -> str:
    """Stream partition k: enter / dwell / exit / transit events, consumed by promotions."""
    return f"geo:events:{{{partition_tag(k, partitions)}}}"


def pending_exits(k: int, partitions: int = EVENT_PARTITIONS) -> str:
    """Sorted set of partition k: "shopper|store" -> exit deadline (a hint for the sweeper)."""
    return f"geo:pending_exits:{{{partition_tag(k, partitions)}}}"


def event_streams(partitions: int = EVENT_PARTITIONS) -> list[str]:
    """Return every partition's stream, in partition order."""
    return [events(k, partitions) for k in range(partitions)]


def shopper_events(shopper_id: str, partitions: int = EVENT_PARTITIONS) -> str:
    """Return the stream partition of a shopper's events."""
    return events(partition(shopper_id, partitions), partitions)


def shopper_pending_exits(shopper_id: str, partitions: int = EVENT_PARTITIONS) -> str:
    """Return the pending-exit index partition of a shopper."""
    return pending_exits(partition(shopper_id, partitions), partitions)


def by_city(city: str) -> str:
    """Return the index of store ids in one city."""
    return f"{CATALOG}:city:{city.lower()}"


def by_brand(brand: str) -> str:
    """Return the index of store ids of one brand."""
    return f"{CATALOG}:brand:{brand.lower()}"


def shopper_tag(shopper_id: str) -> str:
    """Return the hash tag of one shopper's keys. A key of another package that carries it
    (e.g. the account's session, app.auth) can be checked by the commit script
    (CommitCall.guard)."""
    return f"{{s:{shopper_id}}}"


def under_shopper_tag(key: str, shopper_id: str) -> bool:
    """Tell whether a key's hash tag (its first {...}, as Redis Cluster reads it) is the
    shopper's, so that a script on the shopper's keys may touch it too."""
    start = key.find("{")
    end = key.find("}", start + 1) if start >= 0 else -1
    return end > start + 1 and key[start : end + 1] == shopper_tag(shopper_id)


def shopper(shopper_id: str) -> str:
    """Return the hash-tagged prefix of one shopper's keys."""
    return f"geo:{shopper_tag(shopper_id)}"


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
