"""The AR catch game: deterministic spawns, server-validated catches, rewards, anti-cheat.

Plain Python on Redis (no Flask): the app builds one `Game` per process and calls it.
"""

from .engine import Game, GameNotifier, GameRefused, GameSettings, roll_for

__all__ = ["Game", "GameNotifier", "GameRefused", "GameSettings", "roll_for"]
