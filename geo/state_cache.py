"""Each process's copy of the state it last committed for recently active shoppers.

A shopper's next fix through the same process starts from this copy instead of reading the
state: the commit's compare-and-set (geo.scripts.COMMIT) tells a stale copy from a current one
and answers the current state when it is stale. Bounded in shoppers and in age.
"""

from __future__ import annotations

from collections.abc import Callable

# (state fields, fence states, position) as geo.scripts.parse_state gives them.
Known = tuple[dict[str, str | None], dict[str, str], dict[str, str | None]]


class StateCache:
    """The last committed state of recently active shoppers (see geo.engine: the commit checks it).

    An entry is taken out while a call computes from it and put back by the commit, so two
    concurrent calls for one shopper never start from the same copy (the second reads).
    """

    def __init__(self, size: int, max_age_s: float, monotonic: Callable[[], float]) -> None:
        self.size = size
        self.max_age_s = max_age_s
        self.monotonic = monotonic
        self.entries: dict[str, tuple[float, Known]] = {}

    def take(self, shopper_id: str) -> Known | None:
        """Take the shopper's copy out (None if there is none, or it is too old)."""
        item = self.entries.pop(shopper_id, None)
        if item is None or self.monotonic() - item[0] > self.max_age_s:
            return None
        return item[1]

    def put(self, shopper_id: str, known: Known) -> None:
        """Keep what a commit wrote, evicting the oldest copies beyond the size."""
        if self.size <= 0:
            return
        entries = self.entries
        entries.pop(shopper_id, None)
        entries[shopper_id] = (self.monotonic(), known)
        while len(entries) > self.size:
            try:
                entries.pop(next(iter(entries)), None)
            except (StopIteration, RuntimeError):  # emptied or changed by another thread
                break

    def drop(self, shopper_id: str) -> None:
        """Forget the shopper's copy (consent changed, location erased)."""
        self.entries.pop(shopper_id, None)
