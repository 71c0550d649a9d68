"""A set of Lua scripts called by SHA on one Redis server, reloaded after a SCRIPT FLUSH."""

from __future__ import annotations

import hashlib
from typing import Any

import redis


class LuaScripts:
    """Named Lua sources, run with EVALSHA (loading them again when the server forgot them)."""

    def __init__(self, r: redis.Redis, sources: dict[str, str]) -> None:
        self.r = r
        self.sources = dict(sources)
        self.sha = {
            name: hashlib.sha1(src.encode()).hexdigest() for name, src in self.sources.items()
        }

    def load(self) -> None:
        """Load every script (after a restart or SCRIPT FLUSH)."""
        for src in self.sources.values():
            self.r.script_load(src)

    def call(self, name: str, keys: list[str], args: list) -> Any:
        """Run one script, loading the scripts first if the server has forgotten them."""
        try:
            return self.r.evalsha(self.sha[name], len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            self.load()
            return self.r.evalsha(self.sha[name], len(keys), *keys, *args)

    def queue(self, pipe, name: str, keys: list[str], args: list) -> None:
        """Add one script call to a pipeline (the caller reloads on NoScriptError)."""
        pipe.evalsha(self.sha[name], len(keys), *keys, *args)
