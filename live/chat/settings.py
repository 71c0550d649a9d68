"""The chat's limits (the product's defaults) and the shapes of its ids."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class ChatSettings:
    """Limits of the chat; the defaults are the product's."""

    bucket_capacity: int = 5  # comments a viewer may send in a burst
    refill_s: float = 2.0  # seconds to earn one more comment
    max_text_chars: int = 200  # comments and questions, in characters (not bytes)
    history: int = 500  # comments kept per stream
    max_slow_mode_s: int = 300
    max_mute_s: int = 86_400
    max_banned_words: int = 200
    max_word_chars: int = 40
    poll_options: tuple[int, int] = (2, 6)
    poll_option_chars: int = 60
    poll_question_chars: int = 140
    poll_duration_s: tuple[int, int] = (10, 3600)

    @property
    def state_ttl_ms(self) -> int:
        """How long a viewer's bucket and slow-mode state is kept: it matters for at most a
        full refill or the longest slow mode; a minute more covers clocks of processes a
        little apart."""
        return int(1000 * (max(self.bucket_capacity * self.refill_s, self.max_slow_mode_s) + 60))


COMMENT_ID = re.compile(r"^c([1-9][0-9]{0,15})$")
QUESTION_ID = re.compile(r"^q([1-9][0-9]{0,15})$")
POLL_ID = re.compile(r"^poll([1-9][0-9]{0,15})$")
