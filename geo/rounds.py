"""Concurrent record_fixes calls of one process share their Redis round trips."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from core.errors import DomainError

from .model import Fix


class _Request:
    """One record_fixes call waiting for its round (see Rounds)."""

    __slots__ = ("shopper_id", "fixes", "guard", "event", "outcome", "done", "lead")

    def __init__(self, shopper_id: str, fixes: list[Fix], guard) -> None:
        self.shopper_id = shopper_id
        self.fixes = fixes
        self.guard = guard
        self.event = threading.Event()
        self.outcome: Any = None
        self.done = False
        self.lead = False


class Rounds:
    """Concurrent record_fixes calls of one process share their round trips.

    A call that finds no round running runs one (it "leads") with every call queued by then,
    one record_many over all of them, so that a busy worker pays each round trip once per round
    instead of once per fix; calls arriving meanwhile wait for the next round, which the first
    of them leads once the current leader has its own answer. A lone call runs its own round
    right away. Two calls for one shopper never share a round (the later one waits for the
    next), so each call gets exactly its own fixes' results, in order.
    """

    def __init__(self, run: Callable[..., dict], limit: int) -> None:
        self._run = run
        self._limit = limit
        self._lock = threading.Lock()
        self._queue: list[_Request] = []
        self._leading = False

    def submit(self, shopper_id: str, fixes: list[Fix], guard) -> Any:
        """Return the shopper's results, a DomainError, or raise what the round raised."""
        me = _Request(shopper_id, fixes, guard)
        with self._lock:
            self._queue.append(me)
            lead = not self._leading
            self._leading = True
        if not lead:
            try:
                me.event.wait()
            except BaseException:  # killed while waiting: leave, and hand on a lead given
                self._leave(me)
                raise
        if not me.done:
            self._lead(me)
        if isinstance(me.outcome, BaseException) and not isinstance(me.outcome, DomainError):
            raise me.outcome
        return me.outcome

    def _leave(self, me: _Request) -> None:
        with self._lock:
            if me in self._queue:
                self._queue.remove(me)
            if me.lead and not me.done:
                self._hand_on()

    def _hand_on(self) -> None:
        """Make the first queued call the next leader, or note that none leads (locked)."""
        if self._queue:
            successor = self._queue[0]
            successor.lead = True
            successor.event.set()
        else:
            self._leading = False

    def _lead(self, me: _Request) -> None:
        try:
            while not me.done:
                with self._lock:
                    batch, seen, rest = [], set(), []
                    for req in self._queue:
                        if req.shopper_id in seen or len(batch) >= self._limit:
                            rest.append(req)
                        else:
                            batch.append(req)
                            seen.add(req.shopper_id)
                    self._queue = rest
                try:
                    out = self._run(
                        [(req.shopper_id, req.fixes) for req in batch],
                        {req.shopper_id: req.guard for req in batch if req.guard is not None},
                    )
                    for req in batch:
                        req.outcome = out[req.shopper_id]
                except Exception as exc:  # Redis down: every call of the round fails alike
                    for req in batch:
                        req.outcome = exc
                except BaseException:  # this greenlet was killed: the others try again
                    for req in batch:
                        if req is not me:
                            req.outcome = DomainError(
                                "the request was interrupted, retry", code="conflict", status=409
                            )
                            req.done = True
                            req.event.set()
                    raise
                for req in batch:
                    req.done = True
                    if req is not me:
                        req.event.set()
        finally:
            with self._lock:
                self._hand_on()
