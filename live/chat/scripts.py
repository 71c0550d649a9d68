"""The chat's Lua scripts, each next to the named structure of its arguments.

Every rule that must hold across app processes (bans, mutes, slow mode, the per-viewer token
bucket, one vote per viewer, one upvote per viewer, one open poll) is checked and applied inside
one script, with the time passed in from the injected clock. Each call is a small frozen
dataclass whose fields are the script's inputs; its `keys()` and `argv()` are the one place
that orders them into KEYS and ARGV, as the script's header comment numbers them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from core.scripts import LuaScripts

from .keys import (
    bans_key,
    chat_key,
    comments_key,
    mutes_key,
    open_questions_key,
    poll_key,
    polls_key,
    question_states_key,
    questions_key,
    upvoters_key,
    upvotes_key,
    viewer_key,
    voters_key,
)

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


@dataclass(frozen=True)
class Gate:
    """The gate's inputs (KEYS 1-4, ARGV 1-6 of COMMENT and ASK)."""

    sid: str
    viewer_id: str
    now: float
    capacity: int
    refill_s: float
    state_ttl_ms: int
    slow_mode_applies: bool

    def keys(self) -> list[str]:
        sid = self.sid
        return [chat_key(sid), bans_key(sid), mutes_key(sid), viewer_key(sid, self.viewer_id)]

    def argv(self) -> list[Any]:
        return [
            self.viewer_id,
            repr(self.now),
            self.capacity,
            repr(float(self.refill_s)),
            self.state_ttl_ms,
            "1" if self.slow_mode_applies else "0",
        ]


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


@dataclass(frozen=True)
class CommentCall:
    """Post a comment through the gate and keep the last `history` comments."""

    script: ClassVar[str] = "comment"
    gate: Gate
    history: int
    doc: str  # the comment's JSON object without its id

    def keys(self) -> list[str]:
        return [*self.gate.keys(), comments_key(self.gate.sid)]

    def argv(self) -> list[Any]:
        return [*self.gate.argv(), self.history, self.doc]


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


@dataclass(frozen=True)
class AskCall:
    """Post a question through the gate (no slow mode), open for upvotes."""

    script: ClassVar[str] = "ask"
    gate: Gate
    doc: str  # the question's JSON object without its id

    def keys(self) -> list[str]:
        sid = self.gate.sid
        return [*self.gate.keys(), questions_key(sid), open_questions_key(sid)]

    def argv(self) -> list[Any]:
        return [*self.gate.argv(), "", self.doc]  # ARGV 7 is COMMENT's history: unused here


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


@dataclass(frozen=True)
class CommentMove:
    """Delete or pin one kept comment (`script`: delete_comment or pin_comment)."""

    script: str
    sid: str
    seq: str  # the comment id's number: its score in the comments set
    comment_id: str

    def keys(self) -> list[str]:
        return [comments_key(self.sid), chat_key(self.sid)]

    def argv(self) -> list[Any]:
        return [self.seq, self.comment_id]


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


@dataclass(frozen=True)
class StartPollCall:
    """Open a poll unless one is open; its tallies start at zero."""

    script: ClassVar[str] = "start_poll"
    sid: str
    poll_id: str
    seq: int
    now: float
    ends_at: float
    options: int
    doc: str  # question, options and duration as JSON

    def keys(self) -> list[str]:
        return [chat_key(self.sid), poll_key(self.sid, self.poll_id), polls_key(self.sid)]

    def argv(self) -> list[Any]:
        return [
            self.poll_id,
            self.seq,
            repr(self.now),
            repr(self.ends_at),
            self.options,
            self.doc,
        ]


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


@dataclass(frozen=True)
class VoteCall:
    """Count a viewer's one vote in an open poll."""

    script: ClassVar[str] = "vote"
    sid: str
    poll_id: str
    viewer_id: str
    option: int
    now: float

    def keys(self) -> list[str]:
        sid = self.sid
        return [poll_key(sid, self.poll_id), voters_key(sid, self.poll_id), bans_key(sid)]

    def argv(self) -> list[Any]:
        return [self.viewer_id, self.option, repr(self.now)]


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


@dataclass(frozen=True)
class ClosePollCall:
    """Close a poll (again is harmless)."""

    script: ClassVar[str] = "close_poll"
    sid: str
    poll_id: str
    now: float

    def keys(self) -> list[str]:
        return [chat_key(self.sid), poll_key(self.sid, self.poll_id)]

    def argv(self) -> list[Any]:
        return [self.poll_id, repr(self.now)]


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


@dataclass(frozen=True)
class UpvoteCall:
    """Add a viewer's one upvote to someone else's open question."""

    script: ClassVar[str] = "upvote"
    sid: str
    question_id: str
    member: str  # the question's member in the open set (zero-padded seq)
    viewer_id: str

    def keys(self) -> list[str]:
        sid = self.sid
        return [
            questions_key(sid),
            upvotes_key(sid),
            open_questions_key(sid),
            upvoters_key(sid),
            bans_key(sid),
        ]

    def argv(self) -> list[Any]:
        return [self.question_id, self.member, self.viewer_id]


# KEYS: 1 questions  2 open questions  3 states   ARGV: 1 question id  2 member  3 state
CLOSE_QUESTION = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return {'QUESTION_NOT_FOUND'} end
if redis.call('HSETNX', KEYS[3], ARGV[1], ARGV[3]) == 0 then
  return {'QUESTION_CLOSED', redis.call('HGET', KEYS[3], ARGV[1])}
end
redis.call('ZREM', KEYS[2], ARGV[2])
return {'ok'}
"""


@dataclass(frozen=True)
class CloseQuestionCall:
    """Mark an open question answered or dismissed (it leaves the top list)."""

    script: ClassVar[str] = "close_question"
    sid: str
    question_id: str
    member: str
    state: str  # answered | dismissed

    def keys(self) -> list[str]:
        sid = self.sid
        return [questions_key(sid), open_questions_key(sid), question_states_key(sid)]

    def argv(self) -> list[Any]:
        return [self.question_id, self.member, self.state]


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


def run(scripts: LuaScripts, call: Any) -> Any:
    """Run one named call: its script with the KEYS and ARGV its fields make."""
    return scripts.call(call.script, call.keys(), call.argv())
