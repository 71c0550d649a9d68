"""Account erasure in the live rooms: what a viewer wrote or did, in every stream.

Comments (in the chat and in the report's comment log) and questions, with their text and
display name, the viewer's poll votes and upvotes (the tallies stay: counts name nobody),
mutes, bans, the chat's rate state, and the broadcast history's events that carry the viewer's
id go. A drop's winners stay: one coupon per viewer is
part of the coupon's financial record, kept under the opaque id like the ledger.
"""

from __future__ import annotations

import json

import redis

from . import keys
from .chat import (
    bans_key,
    chat_key,
    comments_key,
    mutes_key,
    open_questions_key,
    polls_key,
    question_states_key,
    questions_key,
    upvoters_key,
    upvotes_key,
    viewer_key,
    voters_key,
)
from .history import history_key
from .report import comment_log_key

PAGE = 5_000  # stream entries read per round trip


def erase_viewer(r: redis.Redis, viewer_id: str) -> int:
    """Remove a viewer's words and acts from every stream; return how many streams had some."""
    touched = 0
    for sid in r.zrange(keys.STREAMS, 0, -1):
        if _erase_in_stream(r, sid, viewer_id):
            touched += 1
    return touched


def _by(raw: str, viewer_id: str) -> bool:
    try:
        doc = json.loads(raw)
    except ValueError:
        return False
    return isinstance(doc, dict) and doc.get("viewer_id") == viewer_id


def _entries_by(r: redis.Redis, key: str, field: str, viewer_id: str) -> list[str]:
    """Return the ids of a stream's entries whose JSON `field` names the viewer."""
    found, start = [], "-"
    while True:
        page = r.xrange(key, start, "+", count=PAGE)
        found += [eid for eid, fields in page if _by(fields.get(field, ""), viewer_id)]
        if len(page) < PAGE:
            return found
        start = f"({page[-1][0]}"


def _erase_in_stream(r: redis.Redis, sid: str, viewer_id: str) -> bool:
    pipe = r.pipeline(transaction=False)
    pipe.zrange(comments_key(sid), 0, -1)
    pipe.hgetall(questions_key(sid))
    pipe.zrange(polls_key(sid), 0, -1)
    pipe.hget(chat_key(sid), "pinned")
    comments, questions, polls, pinned = pipe.execute()
    mine_comments = [c for c in comments if _by(c, viewer_id)]
    mine_questions = [qid for qid, doc in questions.items() if _by(doc, viewer_id)]
    upvoters = [
        m
        for m in r.sscan_iter(upvoters_key(sid))
        if m.endswith(f":{viewer_id}") or m.split(":", 1)[0] in mine_questions
    ]
    mine_events = _entries_by(r, history_key(sid), "p", viewer_id)
    mine_logged = _entries_by(r, comment_log_key(sid), "c", viewer_id)
    pipe = r.pipeline(transaction=False)
    if mine_comments:
        pipe.zrem(comments_key(sid), *mine_comments)
    if pinned and _by(pinned, viewer_id):
        pipe.hdel(chat_key(sid), "pinned", "pinned_id")
    for qid in mine_questions:
        pipe.hdel(questions_key(sid), qid)
        pipe.hdel(upvotes_key(sid), qid)
        pipe.hdel(question_states_key(sid), qid)
        pipe.zrem(open_questions_key(sid), f"{int(qid[1:]):012d}")
    if upvoters:
        pipe.srem(upvoters_key(sid), *upvoters)
    for poll_id in polls:
        pipe.hdel(voters_key(sid, poll_id), viewer_id)
    pipe.hdel(mutes_key(sid), viewer_id)
    pipe.srem(bans_key(sid), viewer_id)
    pipe.delete(viewer_key(sid, viewer_id))
    if mine_events:
        pipe.xdel(history_key(sid), *mine_events)
    if mine_logged:
        pipe.xdel(comment_log_key(sid), *mine_logged)
    return any(pipe.execute())  # counts of what each command removed


__all__ = ["erase_viewer"]
