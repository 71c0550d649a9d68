"""Redis keys of a stream's chat, all under the stream's hash tag `{l:<sid>}` (one slot)."""

from __future__ import annotations

from .. import keys


def chat_key(sid: str) -> str:
    """Return the chat hash: seqs, slow_mode, banned_words, pinned, pinned_id, current poll."""
    return f"{keys.stream(sid)}:chat"


def bans_key(sid: str) -> str:
    """Return the set of banned viewer ids."""
    return f"{keys.stream(sid)}:chat:bans"


def mutes_key(sid: str) -> str:
    """Return the hash of viewer id -> muted until (unix seconds)."""
    return f"{keys.stream(sid)}:chat:mutes"


def viewer_key(sid: str, viewer_id: str) -> str:
    """Return the expiring hash of a viewer's token bucket (tokens, ts) and last comment."""
    return f"{keys.stream(sid)}:chat:viewer:{viewer_id}"


def comments_key(sid: str) -> str:
    """Return the sorted set of the last comments (JSON), scored by sequence number."""
    return f"{keys.stream(sid)}:comments"


def questions_key(sid: str) -> str:
    """Return the hash of question id -> question JSON."""
    return f"{keys.stream(sid)}:questions"


def open_questions_key(sid: str) -> str:
    """Return the sorted set of open questions: zero-padded seq scored -upvotes."""
    return f"{keys.stream(sid)}:questions:open"


def upvotes_key(sid: str) -> str:
    """Return the hash of question id -> upvotes."""
    return f"{keys.stream(sid)}:questions:upvotes"


def upvoters_key(sid: str) -> str:
    """Return the set of '<question id>:<viewer id>', one per upvote given."""
    return f"{keys.stream(sid)}:questions:upvoters"


def question_states_key(sid: str) -> str:
    """Return the hash of question id -> answered | dismissed."""
    return f"{keys.stream(sid)}:questions:state"


def polls_key(sid: str) -> str:
    """Return the sorted set of poll ids, scored by sequence number."""
    return f"{keys.stream(sid)}:polls"


def poll_key(sid: str, poll_id: str) -> str:
    """Return a poll's hash: doc, n, started_at, ends_at, closed_at, t0..t<n-1> (tallies)."""
    return f"{keys.stream(sid)}:poll:{poll_id}"


def voters_key(sid: str, poll_id: str) -> str:
    """Return a poll's hash of viewer id -> the option they voted for."""
    return f"{keys.stream(sid)}:poll:{poll_id}:voters"
