"""A stream's chat: comments, moderation, polls and questions, with Redis as the system of record.

Every rule that must hold across app processes (bans, mutes, slow mode, the per-viewer token
bucket, one vote per viewer, one upvote per viewer, one open poll) is checked and applied inside
one Lua script, with the time passed in from the injected clock. All keys of a stream share its
hash tag `{l:<sid>}`, so each script touches one slot.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import redis

from core.errors import DomainError, RateLimited
from core.scripts import LuaScripts

from . import keys

# -- errors ------------------------------------------------------------------------------------
STATUS = {
    "COMMENT_EMPTY": 422,
    "COMMENT_TOO_LONG": 422,
    "QUESTION_EMPTY": 422,
    "QUESTION_TOO_LONG": 422,
    "BANNED_WORD": 422,
    "INVALID_OPTION": 422,
    "INVALID_VIEWER": 422,
    "INVALID_SLOW_MODE": 422,
    "INVALID_MUTE": 422,
    "INVALID_BANNED_WORDS": 422,
    "INVALID_POLL_QUESTION": 422,
    "INVALID_POLL_OPTIONS": 422,
    "INVALID_POLL_DURATION": 422,
    "MUTED": 403,
    "BANNED": 403,
    "OWN_QUESTION": 403,
    "RATE_LIMITED": 429,
    "SLOW_MODE": 429,
    "COMMENT_NOT_FOUND": 404,
    "POLL_NOT_FOUND": 404,
    "QUESTION_NOT_FOUND": 404,
    # POLL_ALREADY_OPEN, POLL_CLOSED, ALREADY_VOTED, ALREADY_UPVOTED, QUESTION_CLOSED: 409
}


class ChatRefused(DomainError):
    """A chat action refused, with a stable code (status by code: 422, 403, 404, 409 or 429)."""

    status = 409

    def __init__(
        self,
        code: str,
        message: str,
        *,
        field: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        # DomainError's own __init__, not super(): ChatThrottled puts RateLimited next in the MRO
        DomainError.__init__(
            self, message, code=code, field=field, status=STATUS.get(code, 409), details=details
        )


class ChatThrottled(ChatRefused, RateLimited):
    """A refusal that lifts by itself: RATE_LIMITED or SLOW_MODE, with retry_after."""

    def __init__(self, code: str, message: str, *, retry_after: float) -> None:
        wait = math.ceil(retry_after * 1000) / 1000  # ms, rounded up so a retry then succeeds
        super().__init__(code, message, details={"retry_after": wait})
        # whole seconds for the HTTP Retry-After header that app/errors.py adds for RateLimited
        self.retry_after = max(1, math.ceil(wait))


# -- settings ----------------------------------------------------------------------------------
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


COMMENT_ID = re.compile(r"^c([1-9][0-9]{0,15})$")
QUESTION_ID = re.compile(r"^q([1-9][0-9]{0,15})$")
POLL_ID = re.compile(r"^poll([1-9][0-9]{0,15})$")


# -- keys (all under the stream's hash tag) ----------------------------------------------------
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


# -- scripts -----------------------------------------------------------------------------------
# The gate every viewer-written text passes: ban, mute, slow mode, token bucket.
# KEYS: 1 chat  2 bans  3 mutes  4 viewer state
# ARGV: 1 viewer  2 now  3 capacity  4 refill seconds per token  5 state TTL ms
#       6 '1' when slow mode applies (comments) and the comment time is recorded
GATE = """
local function gate()
  local viewer, now = ARGV[1], tonumber(ARGV[2])
  if redis.call('SISMEMBER', KEYS[2], viewer) == 1 then return {'BANNED'} end
  local muted = redis.call('HGET', KEYS[3], viewer)
  if muted then
    if tonumber(muted) > now then return {'MUTED', muted} end
    redis.call('HDEL', KEYS[3], viewer)
  end
  local state = redis.call('HMGET', KEYS[4], 'tokens', 'ts', 'last')
  if ARGV[6] == '1' and state[3] then
    local slow = tonumber(redis.call('HGET', KEYS[1], 'slow_mode') or '0')
    local wait = tonumber(state[3]) + slow - now
    if slow > 0 and wait > 0 then return {'SLOW_MODE', tostring(wait)} end
  end
  local cap, refill = tonumber(ARGV[3]), tonumber(ARGV[4])
  local tokens, ts = cap, now
  if state[1] then
    ts = tonumber(state[2])
    -- another process whose clock is behind refills nothing, rather than draining the bucket
    tokens = math.min(cap, tonumber(state[1]) + math.max(0, now - ts) / refill)
    ts = math.max(ts, now)
  end
  if tokens < 1 then return {'RATE_LIMITED', tostring((1 - tokens) * refill)} end
  redis.call('HSET', KEYS[4], 'tokens', tostring(tokens - 1), 'ts', tostring(ts))
  if ARGV[6] == '1' then redis.call('HSET', KEYS[4], 'last', ARGV[2]) end
  redis.call('PEXPIRE', KEYS[4], ARGV[5])
  return nil
end
"""

# KEYS: gate's, 5 comments   ARGV: gate's, 7 history, 8 comment JSON without its id
COMMENT = (
    GATE
    + """
local refused = gate()
if refused then return refused end
local seq = redis.call('HINCRBY', KEYS[1], 'comment_seq', 1)
local doc = '{"id":"c' .. seq .. '",' .. string.sub(ARGV[8], 2)
redis.call('ZADD', KEYS[5], seq, doc)
redis.call('ZREMRANGEBYRANK', KEYS[5], 0, -(tonumber(ARGV[7]) + 1))
return {'ok', doc}
"""
)

# KEYS: gate's, 5 questions, 6 open questions   ARGV: gate's, 7 unused, 8 JSON without its id
ASK = (
    GATE
    + """
local refused = gate()
if refused then return refused end
local seq = redis.call('HINCRBY', KEYS[1], 'question_seq', 1)
local doc = '{"id":"q' .. seq .. '",' .. string.sub(ARGV[8], 2)
redis.call('HSET', KEYS[5], 'q' .. seq, doc)
redis.call('ZADD', KEYS[6], 0, string.format('%012d', seq))
return {'ok', doc}
"""
)

# KEYS: 1 comments  2 chat   ARGV: 1 seq  2 comment id
# A deleted comment that was pinned is unpinned with it, so nobody keeps seeing it.
DELETE_COMMENT = """
local found = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[1])
if #found == 0 then return {'COMMENT_NOT_FOUND'} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[1])
if redis.call('HGET', KEYS[2], 'pinned_id') == ARGV[2] then
  redis.call('HDEL', KEYS[2], 'pinned', 'pinned_id')
end
return {'ok', found[1]}
"""

# KEYS: 1 comments  2 chat   ARGV: 1 seq  2 comment id
PIN_COMMENT = """
local found = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[1])
if #found == 0 then return {'COMMENT_NOT_FOUND'} end
redis.call('HSET', KEYS[2], 'pinned', found[1], 'pinned_id', ARGV[2])
return {'ok', found[1]}
"""

# KEYS: 1 chat  2 new poll  3 polls   ARGV: 1 poll id  2 seq  3 now  4 ends_at  5 n  6 doc
START_POLL = """
local cur = redis.call('HMGET', KEYS[1], 'poll', 'poll_ends_at', 'poll_closed')
if cur[1] and not cur[3] and tonumber(ARGV[3]) < tonumber(cur[2]) then
  return {'POLL_ALREADY_OPEN', cur[1]}
end
redis.call('HSET', KEYS[2], 'doc', ARGV[6], 'n', ARGV[5], 'started_at', ARGV[3],
           'ends_at', ARGV[4])
for i = 0, tonumber(ARGV[5]) - 1 do redis.call('HSET', KEYS[2], 't' .. i, 0) end
redis.call('HSET', KEYS[1], 'poll', ARGV[1], 'poll_ends_at', ARGV[4])
redis.call('HDEL', KEYS[1], 'poll_closed')
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
return {'ok'}
"""

# KEYS: 1 poll  2 voters  3 bans   ARGV: 1 viewer  2 option index  3 now
# The clock decides: a poll past its end is closed even if nobody closed it.
VOTE = """
local p = redis.call('HMGET', KEYS[1], 'n', 'ends_at', 'closed_at')
if not p[1] then return {'POLL_NOT_FOUND'} end
if p[3] or tonumber(ARGV[3]) >= tonumber(p[2]) then return {'POLL_CLOSED'} end
if redis.call('SISMEMBER', KEYS[3], ARGV[1]) == 1 then return {'BANNED'} end
local n, option = tonumber(p[1]), tonumber(ARGV[2])
if option < 0 or option >= n then return {'INVALID_OPTION'} end
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 0 then return {'ALREADY_VOTED'} end
redis.call('HINCRBY', KEYS[1], 't' .. ARGV[2], 1)
local tallies = {}
for i = 0, n - 1 do tallies[i + 1] = redis.call('HGET', KEYS[1], 't' .. i) end
return {'ok', tallies}
"""

# KEYS: 1 chat  2 poll   ARGV: 1 poll id  2 now
# A poll that ran out before anyone closed it is recorded as closed at its end.
CLOSE_POLL = """
local ends = redis.call('HGET', KEYS[2], 'ends_at')
if not ends then return {'POLL_NOT_FOUND'} end
local at = ARGV[2]
if tonumber(ends) < tonumber(at) then at = ends end
redis.call('HSETNX', KEYS[2], 'closed_at', at)
if redis.call('HGET', KEYS[1], 'poll') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'poll_closed', '1')
end
return {'ok'}
"""

# KEYS: 1 questions  2 upvotes  3 open questions  4 upvoters  5 bans
# ARGV: 1 question id  2 its open-set member  3 viewer
UPVOTE = """
local doc = redis.call('HGET', KEYS[1], ARGV[1])
if not doc then return {'QUESTION_NOT_FOUND'} end
if redis.call('SISMEMBER', KEYS[5], ARGV[3]) == 1 then return {'BANNED'} end
if cjson.decode(doc).viewer_id == ARGV[3] then return {'OWN_QUESTION'} end
if not redis.call('ZSCORE', KEYS[3], ARGV[2]) then return {'QUESTION_CLOSED'} end
if redis.call('SADD', KEYS[4], ARGV[1] .. ':' .. ARGV[3]) == 0 then
  return {'ALREADY_UPVOTED'}
end
redis.call('ZINCRBY', KEYS[3], -1, ARGV[2])
return {'ok', redis.call('HINCRBY', KEYS[2], ARGV[1], 1)}
"""

# KEYS: 1 questions  2 open questions  3 states   ARGV: 1 question id  2 member  3 state
CLOSE_QUESTION = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return {'QUESTION_NOT_FOUND'} end
if redis.call('HSETNX', KEYS[3], ARGV[1], ARGV[3]) == 0 then
  return {'QUESTION_CLOSED', redis.call('HGET', KEYS[3], ARGV[1])}
end
redis.call('ZREM', KEYS[2], ARGV[2])
return {'ok'}
"""

SCRIPTS = {
    "comment": COMMENT,
    "ask": ASK,
    "delete_comment": DELETE_COMMENT,
    "pin_comment": PIN_COMMENT,
    "start_poll": START_POLL,
    "vote": VOTE,
    "close_poll": CLOSE_POLL,
    "upvote": UPVOTE,
    "close_question": CLOSE_QUESTION,
}

MESSAGES = {
    "BANNED": "you are banned from this stream's chat",
    "MUTED": "you are muted",
    "SLOW_MODE": "slow mode: wait before commenting again",
    "RATE_LIMITED": "too many comments: wait a moment",
    "COMMENT_NOT_FOUND": "no such comment",
    "POLL_NOT_FOUND": "no such poll",
    "POLL_ALREADY_OPEN": "a poll is already open on this stream",
    "POLL_CLOSED": "the poll is closed",
    "INVALID_OPTION": "no such option",
    "ALREADY_VOTED": "you have already voted in this poll",
    "QUESTION_NOT_FOUND": "no such question",
    "OWN_QUESTION": "you cannot upvote your own question",
    "QUESTION_CLOSED": "the question is no longer open",
    "ALREADY_UPVOTED": "you have already upvoted this question",
}
FIELDS = {
    "INVALID_OPTION": "option",
    "COMMENT_NOT_FOUND": "comment_id",
    "POLL_NOT_FOUND": "poll_id",
    "QUESTION_NOT_FOUND": "question_id",
}


def _refuse(reply: list) -> ChatRefused:
    code = reply[0]
    if code in ("SLOW_MODE", "RATE_LIMITED"):
        return ChatThrottled(code, MESSAGES[code], retry_after=float(reply[1]))
    details = {"until": float(reply[1])} if code == "MUTED" else None
    return ChatRefused(
        code, MESSAGES.get(code, code.lower()), field=FIELDS.get(code), details=details
    )


# -- text rules --------------------------------------------------------------------------------
_SEPARATORS = re.compile(r"[\W_]+")


def _normalize(text: str) -> str:
    # NFKC folds full-width letters (ｂａｄ) and compatibility forms onto the plain ones
    return unicodedata.normalize("NFKC", text).casefold()


def _spelled_out(text: str) -> list[str]:
    """Return runs of single characters split by separators, joined ('b a d' -> 'bad')."""
    # Only runs of single characters are joined: stripping every space would also match
    # across real words ("this cam" would contain "scam").
    runs: list[str] = []
    current: list[str] = []
    for part in _SEPARATORS.split(text) + [""]:
        if len(part) == 1:
            current.append(part)
            continue
        if len(current) > 1:
            runs.append("".join(current))
        current = []
    return runs


def find_banned_word(text: str, words: list[str]) -> str | None:
    """Return the first banned word the text contains (case-insensitive, spelled out or not)."""
    norm = _normalize(text)
    spaced = " " + _SEPARATORS.sub(" ", norm) + " "
    runs = _spelled_out(norm)
    for word in words:
        w = _normalize(word)
        if w in norm:
            return word
        w_spaced = _SEPARATORS.sub(" ", w).strip()
        if w_spaced and w_spaced in spaced:
            return word
        w_bare = _SEPARATORS.sub("", w)
        if w_bare and any(w_bare in run for run in runs):
            return word
    return None


def _clean(text: Any) -> str:
    if not isinstance(text, str):
        return ""
    return unicodedata.normalize("NFC", text).strip()


# -- the chat ----------------------------------------------------------------------------------
class Chat:
    """Comments, moderation, polls and questions of live streams, kept in Redis."""

    def __init__(self, r: redis.Redis, clock, settings: ChatSettings | None = None) -> None:
        self.r = r
        self.clock = clock
        self.settings = settings or ChatSettings()
        self.scripts = LuaScripts(r, SCRIPTS)
        s = self.settings
        # the bucket and slow-mode state matter for at most a full refill or the longest slow
        # mode; a minute more covers clocks of processes a little apart
        self._state_ttl_ms = int(
            1000 * (max(s.bucket_capacity * s.refill_s, s.max_slow_mode_s) + 60)
        )

    # -- comments ------------------------------------------------------------------------------
    def comment(
        self,
        sid: str,
        viewer_id: str,
        text: str,
        *,
        name: str | None = None,
        now: float | None = None,
    ) -> dict[str, Any]:
        """Post a viewer's comment after the length, word, ban, mute and rate rules."""
        clean = self._text(text, "COMMENT")
        return self._gated("comment", sid, viewer_id, clean, name, now, comments_key(sid))

    def recent_comments(self, sid: str, n: int = 50) -> list[dict[str, Any]]:
        """Return the last n comments, oldest first."""
        if n <= 0:
            return []
        return [json.loads(c) for c in self.r.zrange(comments_key(sid), -n, -1)]

    # -- moderation ----------------------------------------------------------------------------
    def delete_comment(self, sid: str, comment_id: str) -> dict[str, Any]:
        """Delete a comment (unpinning it if pinned) and return it."""
        return self._comment_script("delete_comment", sid, comment_id)

    def pin_comment(self, sid: str, comment_id: str) -> dict[str, Any]:
        """Pin one of the kept comments (replacing any pinned one) and return it."""
        return self._comment_script("pin_comment", sid, comment_id)

    def unpin_comment(self, sid: str) -> None:
        """Unpin the pinned comment, if any."""
        self.r.hdel(chat_key(sid), "pinned", "pinned_id")

    def mute(self, sid: str, viewer_id: str, seconds: float) -> float:
        """Mute a viewer for some seconds and return until when."""
        viewer_id = self._viewer(viewer_id)
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, int | float)
            or not 1 <= seconds <= self.settings.max_mute_s
        ):
            raise ChatRefused(
                "INVALID_MUTE", f"mute for 1 to {self.settings.max_mute_s} seconds", field="seconds"
            )
        until = self.clock.now() + seconds
        self.r.hset(mutes_key(sid), viewer_id, repr(until))
        return until

    def unmute(self, sid: str, viewer_id: str) -> None:
        """Lift a viewer's mute."""
        self.r.hdel(mutes_key(sid), viewer_id)

    def ban(self, sid: str, viewer_id: str) -> None:
        """Ban a viewer from writing (their past comments stay)."""
        self.r.sadd(bans_key(sid), self._viewer(viewer_id))

    def unban(self, sid: str, viewer_id: str) -> None:
        """Lift a viewer's ban."""
        self.r.srem(bans_key(sid), viewer_id)

    def set_slow_mode(self, sid: str, seconds: int) -> None:
        """Require seconds between one viewer's comments (0 turns slow mode off)."""
        top = self.settings.max_slow_mode_s
        if isinstance(seconds, bool) or not isinstance(seconds, int) or not 0 <= seconds <= top:
            raise ChatRefused(
                "INVALID_SLOW_MODE", f"slow mode is 0 to {top} whole seconds", field="seconds"
            )
        self.r.hset(chat_key(sid), "slow_mode", seconds)

    def set_banned_words(self, sid: str, words: list[str]) -> list[str]:
        """Replace the stream's banned-word list and return it (deduplicated)."""
        s = self.settings
        if not isinstance(words, list) or len(words) > s.max_banned_words:
            raise ChatRefused(
                "INVALID_BANNED_WORDS", f"at most {s.max_banned_words} banned words", field="words"
            )
        kept: dict[str, str] = {}
        for i, word in enumerate(words):
            clean = _clean(word)
            if not 1 <= len(clean) <= s.max_word_chars:
                raise ChatRefused(
                    "INVALID_BANNED_WORDS",
                    f"a banned word has 1 to {s.max_word_chars} characters",
                    field=f"words[{i}]",
                )
            kept.setdefault(_normalize(clean), clean)
        listed = list(kept.values())
        self.r.hset(chat_key(sid), "banned_words", json.dumps(listed, ensure_ascii=False))
        return listed

    def moderation_state(self, sid: str) -> dict[str, Any]:
        """Return slow mode, banned words, muted and banned viewers and the pinned comment."""
        pipe = self.r.pipeline(transaction=False)
        pipe.hmget(chat_key(sid), "slow_mode", "banned_words", "pinned")
        pipe.hgetall(mutes_key(sid))
        pipe.smembers(bans_key(sid))
        (slow, words, pinned), mutes, bans = pipe.execute()
        now = self.clock.now()
        muted = sorted(
            ({"viewer_id": v, "until": float(u)} for v, u in mutes.items() if float(u) > now),
            key=lambda m: (m["until"], m["viewer_id"]),
        )
        return {
            "slow_mode_s": int(slow or 0),
            "banned_words": json.loads(words or "[]"),
            "muted": muted,
            "banned": sorted(bans),
            "pinned": json.loads(pinned) if pinned else None,
        }

    # -- polls ---------------------------------------------------------------------------------
    def start_poll(
        self, sid: str, question: str, options: list[str], duration_s: int
    ) -> dict[str, Any]:
        """Open a poll (one open poll per stream) and return it with zero tallies."""
        s = self.settings
        q = _clean(question)
        if not 1 <= len(q) <= s.poll_question_chars:
            raise ChatRefused(
                "INVALID_POLL_QUESTION",
                f"the question has 1 to {s.poll_question_chars} characters",
                field="question",
            )
        low, high = s.poll_options
        if not isinstance(options, list) or not low <= len(options) <= high:
            raise ChatRefused(
                "INVALID_POLL_OPTIONS", f"a poll has {low} to {high} options", field="options"
            )
        clean = [_clean(o) for o in options]
        for i, option in enumerate(clean):
            if not 1 <= len(option) <= s.poll_option_chars:
                raise ChatRefused(
                    "INVALID_POLL_OPTIONS",
                    f"an option has 1 to {s.poll_option_chars} characters",
                    field=f"options[{i}]",
                )
        if len({_normalize(o) for o in clean}) != len(clean):
            raise ChatRefused("INVALID_POLL_OPTIONS", "the options must differ", field="options")
        shortest, longest = s.poll_duration_s
        if (
            isinstance(duration_s, bool)
            or not isinstance(duration_s, int | float)
            or not shortest <= duration_s <= longest
        ):
            raise ChatRefused(
                "INVALID_POLL_DURATION",
                f"a poll lasts {shortest} to {longest} seconds",
                field="duration_s",
            )
        # The id is taken before the script so that the script names every key it touches
        # (Redis Cluster); a refused start leaves a gap in the numbering, which is harmless.
        seq = self.r.hincrby(chat_key(sid), "poll_seq", 1)
        poll_id = f"poll{seq}"
        now = self.clock.now()
        doc = json.dumps(
            {"question": q, "options": clean, "duration_s": duration_s}, ensure_ascii=False
        )
        reply = self.scripts.call(
            "start_poll",
            [chat_key(sid), poll_key(sid, poll_id), polls_key(sid)],
            [poll_id, seq, repr(now), repr(now + duration_s), len(clean), doc],
        )
        if reply[0] != "ok":
            raise ChatRefused(
                reply[0], MESSAGES[reply[0]], field="poll", details={"poll_id": reply[1]}
            )
        return self._poll(sid, poll_id, now)

    def vote(self, sid: str, poll_id: str, viewer_id: str, option_index: int) -> dict[str, Any]:
        """Count a viewer's one vote in an open poll and return the new tallies."""
        viewer_id = self._viewer(viewer_id)
        if not POLL_ID.match(str(poll_id)):
            raise _refuse(["POLL_NOT_FOUND"])
        if isinstance(option_index, bool) or not isinstance(option_index, int):
            raise _refuse(["INVALID_OPTION"])
        reply = self.scripts.call(
            "vote",
            [poll_key(sid, poll_id), voters_key(sid, poll_id), bans_key(sid)],
            [viewer_id, option_index, repr(self.clock.now())],
        )
        if reply[0] != "ok":
            raise _refuse(reply)
        return {"poll_id": poll_id, "option": option_index, "tallies": [int(t) for t in reply[1]]}

    def close_poll(self, sid: str, poll_id: str) -> dict[str, Any]:
        """Close a poll (closing it again is harmless) and return its final state."""
        if not POLL_ID.match(str(poll_id)):
            raise _refuse(["POLL_NOT_FOUND"])
        now = self.clock.now()
        reply = self.scripts.call(
            "close_poll", [chat_key(sid), poll_key(sid, poll_id)], [poll_id, repr(now)]
        )
        if reply[0] != "ok":
            raise _refuse(reply)
        return self._poll(sid, poll_id, now)

    def poll_state(self, sid: str) -> dict[str, Any] | None:
        """Return the open poll, or else the last one, with tallies (None if none yet)."""
        poll_id = self.r.hget(chat_key(sid), "poll")
        return self._poll(sid, poll_id, self.clock.now()) if poll_id else None

    def polls(self, sid: str) -> list[dict[str, Any]]:
        """Return every poll of the stream in order, with tallies (final once closed)."""
        ids = self.r.zrange(polls_key(sid), 0, -1)
        pipe = self.r.pipeline(transaction=False)
        for poll_id in ids:
            pipe.hgetall(poll_key(sid, poll_id))
        now = self.clock.now()
        return [_poll_dict(pid, raw, now) for pid, raw in zip(ids, pipe.execute(), strict=True)]

    # -- questions -----------------------------------------------------------------------------
    def ask(
        self, sid: str, viewer_id: str, text: str, *, name: str | None = None
    ) -> dict[str, Any]:
        """Post a viewer's question (the comment rules apply, except slow mode)."""
        clean = self._text(text, "QUESTION")
        doc = self._gated(
            "ask", sid, viewer_id, clean, name, None, questions_key(sid), open_questions_key(sid)
        )
        doc.update(upvotes=0, state="open")
        return doc

    def upvote(self, sid: str, question_id: str, viewer_id: str) -> int:
        """Add a viewer's one upvote to someone else's open question; return its upvotes."""
        viewer_id = self._viewer(viewer_id)
        member = self._question_member(question_id)
        reply = self.scripts.call(
            "upvote",
            [
                questions_key(sid),
                upvotes_key(sid),
                open_questions_key(sid),
                upvoters_key(sid),
                bans_key(sid),
            ],
            [question_id, member, viewer_id],
        )
        if reply[0] != "ok":
            raise _refuse(reply)
        return int(reply[1])

    def top_questions(self, sid: str, n: int = 5) -> list[dict[str, Any]]:
        """Return the n open questions with most upvotes (older first among equals)."""
        if n <= 0:
            return []
        # score -upvotes, member the zero-padded seq: ascending order is most upvotes, then
        # oldest, which a plain upvote score could not break ties by
        ranked = self.r.zrange(open_questions_key(sid), 0, n - 1, withscores=True)
        if not ranked:
            return []
        ids = [f"q{int(member)}" for member, _ in ranked]
        out = []
        for (_, score), raw in zip(ranked, self.r.hmget(questions_key(sid), ids), strict=True):
            if raw:
                out.append({**json.loads(raw), "upvotes": int(-score), "state": "open"})
        return out

    def answer(self, sid: str, question_id: str) -> None:
        """Mark a question answered (it leaves the top list)."""
        self._close_question(sid, question_id, "answered")

    def dismiss(self, sid: str, question_id: str) -> None:
        """Dismiss a question (it leaves the top list)."""
        self._close_question(sid, question_id, "dismissed")

    def questions(self, sid: str) -> list[dict[str, Any]]:
        """Return every question with its upvotes and state, oldest first."""
        pipe = self.r.pipeline(transaction=False)
        pipe.hgetall(questions_key(sid))
        pipe.hgetall(upvotes_key(sid))
        pipe.hgetall(question_states_key(sid))
        docs, upvotes, states = pipe.execute()
        out = [
            {
                **json.loads(raw),
                "upvotes": int(upvotes.get(qid, 0)),
                "state": states.get(qid, "open"),
            }
            for qid, raw in docs.items()
        ]
        return sorted(out, key=lambda q: int(q["id"][1:]))

    # -- internals -----------------------------------------------------------------------------
    def _viewer(self, viewer_id: Any) -> str:
        if not isinstance(viewer_id, str) or not 1 <= len(viewer_id) <= 128:
            raise ChatRefused("INVALID_VIEWER", "not a viewer id", field="viewer_id")
        return viewer_id

    def _text(self, text: Any, kind: str) -> str:
        clean = _clean(text)
        if not clean:
            raise ChatRefused(f"{kind}_EMPTY", f"the {kind.lower()} is empty", field="text")
        top = self.settings.max_text_chars
        if len(clean) > top:
            raise ChatRefused(
                f"{kind}_TOO_LONG",
                f"a {kind.lower()} has at most {top} characters",
                field="text",
                details={"max_chars": top, "chars": len(clean)},
            )
        return clean

    def _gated(
        self,
        script: str,
        sid: str,
        viewer_id: str,
        text: str,
        name: str | None,
        now: float | None,
        *store: str,
    ) -> dict[str, Any]:
        viewer_id = self._viewer(viewer_id)
        at = self.clock.now() if now is None else now
        # One read for the word list; the ban and mute are read too, so that a banned or muted
        # viewer hears that rather than BANNED_WORD. The script re-checks both atomically.
        pipe = self.r.pipeline(transaction=False)
        pipe.hget(chat_key(sid), "banned_words")
        pipe.sismember(bans_key(sid), viewer_id)
        pipe.hget(mutes_key(sid), viewer_id)
        words, banned, muted = pipe.execute()
        if banned:
            raise _refuse(["BANNED"])
        if muted and float(muted) > at:
            raise _refuse(["MUTED", muted])
        word = find_banned_word(text, json.loads(words)) if words else None
        if word is not None:
            raise ChatRefused(
                "BANNED_WORD",
                "the text contains a banned word",
                field="text",
                details={"word": word},
            )
        doc: dict[str, Any] = {"viewer_id": viewer_id}
        if name:
            doc["name"] = str(name)[:64]
        doc.update(text=text, at=at)
        s = self.settings
        reply = self.scripts.call(
            script,
            [chat_key(sid), bans_key(sid), mutes_key(sid), viewer_key(sid, viewer_id), *store],
            [
                viewer_id,
                repr(at),
                s.bucket_capacity,
                repr(float(s.refill_s)),
                self._state_ttl_ms,
                "1" if script == "comment" else "0",
                s.history,
                json.dumps(doc, ensure_ascii=False),
            ],
        )
        if reply[0] != "ok":
            raise _refuse(reply)
        return json.loads(reply[1])

    def _comment_script(self, script: str, sid: str, comment_id: str) -> dict[str, Any]:
        found = COMMENT_ID.match(str(comment_id))
        if not found:
            raise _refuse(["COMMENT_NOT_FOUND"])
        reply = self.scripts.call(
            script, [comments_key(sid), chat_key(sid)], [found.group(1), comment_id]
        )
        if reply[0] != "ok":
            raise _refuse(reply)
        return json.loads(reply[1])

    def _question_member(self, question_id: str) -> str:
        found = QUESTION_ID.match(str(question_id))
        if not found:
            raise _refuse(["QUESTION_NOT_FOUND"])
        return f"{int(found.group(1)):012d}"

    def _close_question(self, sid: str, question_id: str, state: str) -> None:
        member = self._question_member(question_id)
        reply = self.scripts.call(
            "close_question",
            [questions_key(sid), open_questions_key(sid), question_states_key(sid)],
            [question_id, member, state],
        )
        if reply[0] != "ok":
            raise ChatRefused(
                reply[0],
                MESSAGES[reply[0]],
                field=FIELDS.get(reply[0]),
                details={"state": reply[1]} if len(reply) > 1 else None,
            )

    def _poll(self, sid: str, poll_id: str, now: float) -> dict[str, Any]:
        raw = self.r.hgetall(poll_key(sid, poll_id))
        if not raw:
            raise _refuse(["POLL_NOT_FOUND"])
        return _poll_dict(poll_id, raw, now)


def _poll_dict(poll_id: str, raw: dict[str, str], now: float) -> dict[str, Any]:
    doc = json.loads(raw["doc"])
    ends_at = float(raw["ends_at"])
    closed_at = float(raw["closed_at"]) if "closed_at" in raw else None
    is_open = closed_at is None and now < ends_at
    if closed_at is None and not is_open:
        closed_at = ends_at  # ran out by the clock; nobody had to close it
    tallies = [int(raw.get(f"t{i}", 0)) for i in range(int(raw["n"]))]
    return {
        "id": poll_id,
        "question": doc["question"],
        "options": doc["options"],
        "tallies": tallies,
        "total": sum(tallies),
        "duration_s": doc["duration_s"],
        "started_at": float(raw["started_at"]),
        "ends_at": ends_at,
        "closed_at": closed_at,
        "open": is_open,
        "remaining_s": max(0.0, ends_at - now) if is_open else 0.0,
    }
