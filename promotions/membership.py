"""Loyalty memberships: programs, and the member numbers shoppers link to their accounts."""

from __future__ import annotations

import json
from typing import Any

import redis

from core.errors import Conflict, DomainError, NotFound, ValidationFailed

from . import keys
from .models import ProgramIn
from .patterns import PatternError, matches


class Memberships:
    """Programs (set up by marketers) and each shopper's linked member numbers."""

    def __init__(self, r: redis.Redis, clock) -> None:
        self.r = r
        self.clock = clock

    def create_program(self, data: ProgramIn) -> dict[str, Any]:
        """Add a program; its id must be new."""
        doc = data.model_dump()
        doc["created_at"] = self.clock.now()
        if not self.r.hsetnx(keys.PROGRAMS, data.id, json.dumps(doc)):
            raise Conflict("a program with this id exists", code="program_exists", field="id")
        return doc

    def programs(self) -> list[dict[str, Any]]:
        """Return every program, by id."""
        return [json.loads(v) for _, v in sorted(self.r.hgetall(keys.PROGRAMS).items())]

    def program(self, program_id: str) -> dict[str, Any]:
        """Return one program or raise NotFound."""
        raw = self.r.hget(keys.PROGRAMS, program_id)
        if raw is None:
            raise NotFound("no such membership program", code="program_not_found", field="program")
        return json.loads(raw)

    def link(self, shopper_id: str, program_id: str, number: str) -> dict[str, Any]:
        """Link a member number to a shopper; a number belongs to one shopper per program."""
        program = self.program(program_id)
        number = number.strip()
        try:
            # RE2, not re: the marketer's pattern must not backtrack on the shopper's input.
            ok = matches(program["number_pattern"], number)
        except PatternError:
            # Saved before patterns were checked for RE2: the program needs a new pattern.
            raise DomainError(
                "this program's number format cannot be checked; ask the organiser to update it",
                code="program_pattern_unsupported",
                field="program",
                status=409,
            ) from None
        if not ok:
            raise ValidationFailed(
                "the member number does not have this program's format",
                code="invalid_member_number",
                field="member_number",
            )
        members = keys.program_members(program_id)
        # The uniqueness claim is one atomic HSETNX on the program's key; the shopper's own
        # list is written after it, and a repeat by the same shopper completes a half-done link.
        if not self.r.hsetnx(members, number, shopper_id):
            if self.r.hget(members, number) != shopper_id:
                raise Conflict(
                    "this member number is linked to another account",
                    code="member_number_taken",
                    field="member_number",
                )
        previous = self.r.hget(keys.shopper_memberships(shopper_id), program_id)
        if previous and previous != number:
            self._release(program_id, previous, shopper_id)
        self.r.hset(keys.shopper_memberships(shopper_id), program_id, number)
        return {"program": program_id, "program_name": program["name"], "member_number": number}

    def unlink(self, shopper_id: str, program_id: str) -> None:
        """Remove a shopper's membership of a program (NotFound if none)."""
        number = self.r.hget(keys.shopper_memberships(shopper_id), program_id)
        if number is None:
            raise NotFound(
                "no membership of this program", code="membership_not_found", field="program"
            )
        self.r.hdel(keys.shopper_memberships(shopper_id), program_id)
        self._release(program_id, number, shopper_id)

    def _release(self, program_id: str, number: str, shopper_id: str) -> None:
        # Free the number only if it is still this shopper's (compare-and-delete).
        self.r.eval(
            "if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then "
            "return redis.call('HDEL', KEYS[1], ARGV[1]) end return 0",
            1,
            keys.program_members(program_id),
            number,
            shopper_id,
        )

    def list(self, shopper_id: str) -> list[dict[str, Any]]:
        """Return the shopper's memberships."""
        linked = self.r.hgetall(keys.shopper_memberships(shopper_id))
        names = {p["id"]: p["name"] for p in self.programs()}
        return [
            {"program": p, "program_name": names.get(p), "member_number": n}
            for p, n in sorted(linked.items())
        ]

    def has(self, shopper_id: str, program_id: str) -> bool:
        """Tell whether the shopper has linked a membership of the program."""
        return bool(self.r.hexists(keys.shopper_memberships(shopper_id), program_id))

    def erase(self, shopper_id: str) -> None:
        """Remove every membership of a shopper (account erasure)."""
        for program_id, number in self.r.hgetall(keys.shopper_memberships(shopper_id)).items():
            self._release(program_id, number, shopper_id)
        self.r.delete(keys.shopper_memberships(shopper_id))
