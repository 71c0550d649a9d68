"""Live chat on a real Redis: comments and their rules, moderation, polls and questions."""

from __future__ import annotations

import multiprocessing
import random

import pytest

from app.sinks import redis_connect
from core.clock import FrozenClock
from core.errors import RateLimited
from live import chat as chat_mod
from live.chat import Chat, ChatRefused, ChatSettings, ChatThrottled, find_banned_word

SID = "7"


@pytest.fixture
def chat(redis_client, clock) -> Chat:
    return Chat(redis_client, clock)


def refused(call, *args, **kwargs) -> ChatRefused:
    """Run a call that must be refused and return the refusal."""
    with pytest.raises(ChatRefused) as info:
        call(*args, **kwargs)
    return info.value


# -- comments ----------------------------------------------------------------------------------
def test_a_comment_is_stored_stripped_with_id_viewer_name_and_time(chat, clock):
    first = chat.comment(SID, "u1", "  hello there  ", name="Ann")
    clock.advance(3)
    second = chat.comment(SID, "u2", "这件大衣好看")
    assert first == {
        "id": "c1",
        "viewer_id": "u1",
        "name": "Ann",
        "text": "hello there",
        "at": clock.now() - 3,
    }
    assert second == {"id": "c2", "viewer_id": "u2", "text": "这件大衣好看", "at": clock.now()}
    assert chat.recent_comments(SID) == [first, second]
    assert chat.recent_comments(SID, 1) == [second]
    assert chat.recent_comments("other") == []


@pytest.mark.parametrize(
    ("text", "outcome"),
    [
        ("", "COMMENT_EMPTY"),
        ("   \n\t ", "COMMENT_EMPTY"),
        ("a" * 200, "ok"),
        ("a" * 201, "COMMENT_TOO_LONG"),
        ("好" * 200, "ok"),  # 600 bytes in UTF-8, 200 characters
        ("好" * 201, "COMMENT_TOO_LONG"),
        ("  " + "x" * 200 + "  ", "ok"),  # length after stripping
        ("😍" * 200, "ok"),
    ],
)
def test_comment_length_counts_characters(chat, text, outcome):
    if outcome == "ok":
        assert chat.comment(SID, "u1", text)["text"] == text.strip()
    else:
        error = refused(chat.comment, SID, "u1", text)
        assert (error.code, error.status, error.field) == (outcome, 422, "text")


def test_history_keeps_the_last_comments_only(redis_client, clock):
    chat = Chat(redis_client, clock, ChatSettings(history=3, bucket_capacity=10))
    for i in range(5):
        chat.comment(SID, "u1", f"m{i}")
    assert [c["text"] for c in chat.recent_comments(SID, 50)] == ["m2", "m3", "m4"]
    assert refused(chat.pin_comment, SID, "c1").code == "COMMENT_NOT_FOUND"


# -- token bucket and slow mode ----------------------------------------------------------------
def test_token_bucket_allows_a_burst_of_five_then_refills_one_per_two_seconds(chat, clock):
    for _ in range(5):
        chat.comment(SID, "u1", "hi")
    error = refused(chat.comment, SID, "u1", "hi")
    assert isinstance(error, ChatThrottled) and isinstance(error, RateLimited)
    assert (error.code, error.status, error.details) == ("RATE_LIMITED", 429, {"retry_after": 2.0})
    assert error.retry_after == 2
    assert chat.comment(SID, "u2", "others are not limited")["viewer_id"] == "u2"
    clock.advance(1.5)
    assert refused(chat.comment, SID, "u1", "hi").details == {"retry_after": 0.5}
    clock.advance(0.5)
    chat.comment(SID, "u1", "one more after two seconds")
    assert refused(chat.comment, SID, "u1", "hi").code == "RATE_LIMITED"
    clock.advance(3600)  # a long pause refills to the capacity, not beyond
    for _ in range(5):
        chat.comment(SID, "u1", "hi")
    assert refused(chat.comment, SID, "u1", "hi").code == "RATE_LIMITED"


def test_the_bucket_is_shared_by_processes(redis_server, redis_client, clock):
    other_client = redis_connect(redis_server, decode_responses=True)
    try:
        a, b = Chat(redis_client, clock), Chat(other_client, FrozenClock(clock.now()))
        for chat in (a, b, a, b, a):
            chat.comment(SID, "u1", "hi")
        assert refused(b.comment, SID, "u1", "hi").code == "RATE_LIMITED"
    finally:
        other_client.close()


def test_a_clock_behind_does_not_drain_or_refill_the_bucket(chat, clock):
    for _ in range(5):
        chat.comment(SID, "u1", "hi")
    # another process's clock a little behind: no refill, no negative balance
    assert refused(chat.comment, SID, "u1", "hi", now=clock.now() - 1).code == "RATE_LIMITED"
    clock.advance(2)
    chat.comment(SID, "u1", "refilled by the later clock")


def test_slow_mode_spaces_one_viewers_comments(chat, clock):
    chat.set_slow_mode(SID, 10)
    chat.comment(SID, "u1", "first")
    chat.comment(SID, "u2", "another viewer is not held back")
    clock.advance(4)
    error = refused(chat.comment, SID, "u1", "too soon")
    assert isinstance(error, ChatThrottled)
    assert (error.code, error.status, error.details) == ("SLOW_MODE", 429, {"retry_after": 6.0})
    chat.ask(SID, "u1", "questions are not comments?")  # slow mode is for comments
    clock.advance(6)
    chat.comment(SID, "u1", "after ten seconds")
    chat.set_slow_mode(SID, 0)
    chat.comment(SID, "u1", "slow mode off")
    assert chat.moderation_state(SID)["slow_mode_s"] == 0


@pytest.mark.parametrize("seconds", [-1, 301, 1.5, True, "10", None])
def test_slow_mode_takes_0_to_300_whole_seconds(chat, seconds):
    error = refused(chat.set_slow_mode, SID, seconds)
    assert (error.code, error.status, error.field) == ("INVALID_SLOW_MODE", 422, "seconds")


def test_slow_mode_of_300_seconds_is_allowed(chat):
    chat.set_slow_mode(SID, 300)
    assert chat.moderation_state(SID)["slow_mode_s"] == 300


# -- mute and ban ------------------------------------------------------------------------------
def test_a_mute_lifts_by_the_clock(chat, clock):
    until = chat.mute(SID, "u1", 60)
    assert until == clock.now() + 60
    error = refused(chat.comment, SID, "u1", "hello")
    assert (error.code, error.status, error.details) == ("MUTED", 403, {"until": until})
    assert refused(chat.ask, SID, "u1", "may I ask?").code == "MUTED"
    assert chat.moderation_state(SID)["muted"] == [{"viewer_id": "u1", "until": until}]
    clock.advance(59.5)
    assert refused(chat.comment, SID, "u1", "hello").code == "MUTED"
    clock.advance(0.5)
    assert chat.moderation_state(SID)["muted"] == []
    chat.comment(SID, "u1", "back")


def test_unmute_lifts_a_mute_early(chat):
    chat.mute(SID, "u1", 600)
    chat.unmute(SID, "u1")
    chat.comment(SID, "u1", "back")


def test_the_script_refuses_a_mute_set_after_the_first_read(chat, redis_client, clock):
    # the pre-read only orders the refusals; the script decides (here it sees the mute alone)
    redis_client.hset(chat_mod.mutes_key(SID), "u1", repr(clock.now() + 5))
    assert (
        chat.scripts.call(
            "comment",
            [
                chat_mod.chat_key(SID),
                chat_mod.bans_key(SID),
                chat_mod.mutes_key(SID),
                chat_mod.viewer_key(SID, "u1"),
                chat_mod.comments_key(SID),
            ],
            ["u1", repr(clock.now()), 5, "2.0", 60_000, "1", 500, '{"text":"x"}'],
        )[0]
        == "MUTED"
    )


@pytest.mark.parametrize("seconds", [0, -5, 86_401, True, "60"])
def test_mute_takes_1_second_to_a_day(chat, seconds):
    error = refused(chat.mute, SID, "u1", seconds)
    assert (error.code, error.field) == ("INVALID_MUTE", "seconds")


def test_a_banned_viewer_cannot_write_vote_or_upvote_and_keeps_past_comments(chat):
    kept = chat.comment(SID, "u1", "before the ban")
    question = chat.ask(SID, "u2", "what sizes?")
    poll = chat.start_poll(SID, "Colour?", ["red", "blue"], 60)
    chat.ban(SID, "u1")
    for call, args in [
        (chat.comment, ("u1", "hi")),
        (chat.ask, ("u1", "hi?")),
        (chat.vote, (poll["id"], "u1", 0)),
        (chat.upvote, (question["id"], "u1")),
    ]:
        error = refused(call, SID, *args)
        assert (error.code, error.status) == ("BANNED", 403)
    assert chat.recent_comments(SID) == [kept]
    assert chat.moderation_state(SID)["banned"] == ["u1"]
    chat.unban(SID, "u1")
    chat.comment(SID, "u1", "after the unban")
    assert chat.moderation_state(SID)["banned"] == []


@pytest.mark.parametrize("viewer", ["", None, 42, "x" * 129])
def test_a_viewer_id_is_a_short_string(chat, viewer):
    assert refused(chat.comment, SID, viewer, "hi").code == "INVALID_VIEWER"


# -- banned words ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("words", "text", "hit"),
    [
        (["bad"], "that is BAD", "bad"),
        (["Bad"], "so bad!", "Bad"),
        (["bad"], "b a d", "bad"),
        (["bad"], "so b.a.d!", "bad"),
        (["bad"], "B-A-D quality", "bad"),
        (["bad"], "ｂａｄ", "bad"),  # full-width letters
        (["bad"], "badge", "bad"),  # a substring match, as specified
        (["scam"], "is this cam ok?", None),  # separators are only dropped between single letters
        (["scam"], "what a s c a m", "scam"),
        (["free money"], "FREE-money here", "free money"),
        (["free money"], "f r e e m o n e y", "free money"),
        (["假货"], "这是假货吗", "假货"),
        (["假货"], "假 货", "假货"),
        (["假货"], "假，货！", "假货"),
        (["假货"], "真货", None),
        (["ugly", "scam"], "lovely coat", None),
    ],
)
def test_banned_words_match(words, text, hit):
    assert find_banned_word(text, words) == hit


def test_a_banned_word_refuses_the_comment_and_the_question(chat):
    assert chat.set_banned_words(SID, [" scam ", "假货", "SCAM"]) == ["scam", "假货"]
    error = refused(chat.comment, SID, "u1", "total s-c-a-m")
    assert (error.code, error.status, error.field) == ("BANNED_WORD", 422, "text")
    assert error.details == {"word": "scam"}
    assert refused(chat.ask, SID, "u1", "是假货吗？").code == "BANNED_WORD"
    chat.comment(SID, "u1", "all fine")
    chat.set_banned_words(SID, [])
    chat.comment(SID, "u1", "a scam? no longer banned")
    assert chat.moderation_state(SID)["banned_words"] == []


def test_banned_and_muted_come_before_banned_words(chat):
    chat.set_banned_words(SID, ["bad"])
    chat.ban(SID, "u1")
    chat.mute(SID, "u2", 60)
    assert refused(chat.comment, SID, "u1", "bad").code == "BANNED"
    assert refused(chat.comment, SID, "u2", "bad").code == "MUTED"


@pytest.mark.parametrize(
    ("words", "field"),
    [
        (["ok"] * 201, "words"),
        ("bad", "words"),
        (["ok", ""], "words[1]"),
        (["ok", "   "], "words[1]"),
        (["x" * 41], "words[0]"),
        ([None], "words[0]"),
    ],
)
def test_banned_word_list_limits(chat, words, field):
    error = refused(chat.set_banned_words, SID, words)
    assert (error.code, error.field) == ("INVALID_BANNED_WORDS", field)


def test_two_hundred_words_of_forty_characters_are_allowed(chat):
    words = [f"{i:03d}" + "x" * 37 for i in range(200)]
    assert chat.set_banned_words(SID, words) == words


# -- delete and pin ----------------------------------------------------------------------------
def test_pin_unpin_and_delete(chat):
    first = chat.comment(SID, "u1", "first")
    second = chat.comment(SID, "u2", "second")
    assert chat.pin_comment(SID, "c1") == first
    assert chat.moderation_state(SID)["pinned"] == first
    assert chat.pin_comment(SID, "c2") == second  # replaces
    chat.unpin_comment(SID)
    assert chat.moderation_state(SID)["pinned"] is None
    chat.pin_comment(SID, "c1")
    assert chat.delete_comment(SID, "c2") == second
    assert chat.moderation_state(SID)["pinned"] == first  # another comment's deletion
    assert chat.delete_comment(SID, "c1") == first
    assert chat.moderation_state(SID)["pinned"] is None  # a deleted comment stays not pinned
    assert chat.recent_comments(SID) == []


@pytest.mark.parametrize("comment_id", ["c1", "c99", "c0", "x", "c-1", "1", None])
def test_unknown_comments_are_not_found(chat, comment_id):
    for call in (chat.delete_comment, chat.pin_comment):
        error = refused(call, SID, comment_id)
        assert (error.code, error.status, error.field) == ("COMMENT_NOT_FOUND", 404, "comment_id")


# -- polls -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("question", "options", "duration", "code", "field"),
    [
        ("", ["a", "b"], 60, "INVALID_POLL_QUESTION", "question"),
        ("q" * 141, ["a", "b"], 60, "INVALID_POLL_QUESTION", "question"),
        ("Colour?", ["a"], 60, "INVALID_POLL_OPTIONS", "options"),
        ("Colour?", list("abcdefg"), 60, "INVALID_POLL_OPTIONS", "options"),
        ("Colour?", "ab", 60, "INVALID_POLL_OPTIONS", "options"),
        ("Colour?", ["a", " "], 60, "INVALID_POLL_OPTIONS", "options[1]"),
        ("Colour?", ["a", "o" * 61], 60, "INVALID_POLL_OPTIONS", "options[1]"),
        ("Colour?", ["Red", "red "], 60, "INVALID_POLL_OPTIONS", "options"),
        ("Colour?", ["a", "b"], 9, "INVALID_POLL_DURATION", "duration_s"),
        ("Colour?", ["a", "b"], 3601, "INVALID_POLL_DURATION", "duration_s"),
        ("Colour?", ["a", "b"], True, "INVALID_POLL_DURATION", "duration_s"),
    ],
)
def test_poll_limits(chat, question, options, duration, code, field):
    error = refused(chat.start_poll, SID, question, options, duration)
    assert (error.code, error.status, error.field) == (code, 422, field)


@pytest.mark.parametrize(
    ("question", "options", "duration"),
    [
        ("q" * 140, ["a", "b"], 10),
        ("喜欢哪个颜色？", ["红", "蓝", "绿", "黑", "白", "o" * 60], 3600),
    ],
)
def test_poll_limits_are_inclusive(chat, question, options, duration):
    assert chat.start_poll(SID, question, options, duration)["options"] == options


def test_a_poll_counts_one_vote_per_viewer(chat, clock):
    poll = chat.start_poll(SID, " Which colour? ", ["Red", "Blue", "Green"], 60)
    assert poll == {
        "id": "poll1",
        "question": "Which colour?",
        "options": ["Red", "Blue", "Green"],
        "tallies": [0, 0, 0],
        "total": 0,
        "duration_s": 60,
        "started_at": clock.now(),
        "ends_at": clock.now() + 60,
        "closed_at": None,
        "open": True,
        "remaining_s": 60.0,
    }
    assert chat.vote(SID, "poll1", "u1", 1) == {
        "poll_id": "poll1",
        "option": 1,
        "tallies": [0, 1, 0],
    }
    chat.vote(SID, "poll1", "u2", 1)
    chat.vote(SID, "poll1", "u3", 0)
    error = refused(chat.vote, SID, "poll1", "u1", 2)
    assert (error.code, error.status) == ("ALREADY_VOTED", 409)
    clock.advance(20)
    state = chat.poll_state(SID)
    assert (state["tallies"], state["total"], state["remaining_s"]) == ([1, 2, 0], 3, 40.0)


@pytest.mark.parametrize("option", [-1, 3, "1", 1.0, True, None])
def test_a_vote_needs_an_existing_option(chat, option):
    chat.start_poll(SID, "Colour?", ["a", "b", "c"], 60)
    error = refused(chat.vote, SID, "poll1", "u1", option)
    assert (error.code, error.status, error.field) == ("INVALID_OPTION", 422, "option")
    chat.vote(SID, "poll1", "u1", 2)  # a refused vote does not count as the viewer's vote


@pytest.mark.parametrize("poll_id", ["poll2", "poll0", "1", "poll1:voters", None])
def test_unknown_polls_are_not_found(chat, poll_id):
    chat.start_poll(SID, "Colour?", ["a", "b"], 60)
    for call, args in [(chat.vote, (poll_id, "u1", 0)), (chat.close_poll, (poll_id,))]:
        error = refused(call, SID, *args)
        assert (error.code, error.status, error.field) == ("POLL_NOT_FOUND", 404, "poll_id")


def test_one_open_poll_per_stream_and_expiry_by_the_clock(chat, clock):
    chat.start_poll(SID, "First?", ["a", "b"], 30)
    error = refused(chat.start_poll, SID, "Second?", ["a", "b"], 30)
    assert (error.code, error.status, error.details) == (
        "POLL_ALREADY_OPEN",
        409,
        {"poll_id": "poll1"},
    )
    chat.start_poll("other", "Elsewhere?", ["a", "b"], 30)  # another stream is independent
    chat.vote(SID, "poll1", "u1", 0)
    clock.advance(29.5)
    chat.vote(SID, "poll1", "u2", 0)
    clock.advance(0.5)  # nobody closes it: the clock does
    assert refused(chat.vote, SID, "poll1", "u3", 1).code == "POLL_CLOSED"
    state = chat.poll_state(SID)
    assert (state["open"], state["closed_at"], state["tallies"]) == (False, clock.now(), [2, 0])
    second = chat.start_poll(SID, "Second?", ["a", "b"], 30)
    assert (second["id"], second["open"]) == ("poll3", True)  # poll2 was the refused start
    assert chat.poll_state(SID)["id"] == "poll3"


def test_closing_a_poll_ends_voting_and_lets_the_next_start(chat, clock):
    chat.start_poll(SID, "First?", ["a", "b"], 300)
    chat.vote(SID, "poll1", "u1", 1)
    clock.advance(10)
    closed = chat.close_poll(SID, "poll1")
    assert (closed["open"], closed["closed_at"], closed["tallies"]) == (False, clock.now(), [0, 1])
    assert refused(chat.vote, SID, "poll1", "u2", 0).code == "POLL_CLOSED"
    clock.advance(5)
    assert chat.close_poll(SID, "poll1")["closed_at"] == clock.now() - 5  # again: harmless
    assert chat.poll_state(SID)["id"] == "poll1"  # the last closed poll until a new one
    chat.start_poll(SID, "Second?", ["x", "y", "z"], 60)
    chat.vote(SID, "poll2", "u1", 2)
    clock.advance(600)
    chat.close_poll(SID, "poll2")  # closed late: recorded as closed at its end
    report = chat.polls(SID)
    assert [(p["id"], p["tallies"], p["open"]) for p in report] == [
        ("poll1", [0, 1], False),
        ("poll2", [0, 0, 1], False),
    ]
    assert report[1]["closed_at"] == report[1]["ends_at"]


def test_no_poll_yet(chat):
    assert chat.poll_state(SID) is None
    assert chat.polls(SID) == []


def test_one_vote_per_viewer_across_two_processes_clients(redis_server, redis_client, clock):
    other_client = redis_connect(redis_server, decode_responses=True)
    try:
        a, b = Chat(redis_client, clock), Chat(other_client, FrozenClock(clock.now()))
        a.start_poll(SID, "Colour?", ["a", "b"], 60)
        b.vote(SID, "poll1", "u1", 0)
        assert refused(a.vote, SID, "poll1", "u1", 1).code == "ALREADY_VOTED"
        a.vote(SID, "poll1", "u2", 1)
        assert refused(b.vote, SID, "poll1", "u2", 1).code == "ALREADY_VOTED"
        assert a.poll_state(SID)["tallies"] == b.poll_state(SID)["tallies"] == [1, 1]
    finally:
        other_client.close()


def _vote_race(url, t0, seed, barrier, queue):
    r = redis_connect(url, decode_responses=True)
    chat = Chat(r, FrozenClock(t0))
    viewers = list(range(50))
    random.Random(seed).shuffle(viewers)
    barrier.wait()
    outcomes = []
    for i in viewers:
        try:
            chat.vote(SID, "poll1", f"viewer{i}", i % 3)
            outcomes.append("ok")
        except ChatRefused as error:
            outcomes.append(error.code)
    r.close()
    queue.put(outcomes)


def test_four_processes_count_each_viewer_once(chat, redis_server, redis_client, clock):
    chat.start_poll(SID, "Colour?", ["a", "b", "c"], 600)
    ctx = multiprocessing.get_context("spawn")
    barrier, queue = ctx.Barrier(4), ctx.Queue()
    procs = [
        ctx.Process(target=_vote_race, args=(redis_server, clock.now(), n, barrier, queue))
        for n in range(4)
    ]
    for p in procs:
        p.start()
    replies = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    outcomes = [o for reply in replies for o in reply]
    assert (outcomes.count("ok"), outcomes.count("ALREADY_VOTED"), len(outcomes)) == (50, 150, 200)
    assert chat.poll_state(SID)["tallies"] == [17, 17, 16]
    assert redis_client.hlen(chat_mod.voters_key(SID, "poll1")) == 50


# -- questions ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "QUESTION_EMPTY"),
        ("  ", "QUESTION_EMPTY"),
        ("?" * 201, "QUESTION_TOO_LONG"),
    ],
)
def test_question_length(chat, text, code):
    error = refused(chat.ask, SID, "u1", text)
    assert (error.code, error.status, error.field) == (code, 422, "text")


def test_upvote_rules(chat):
    question = chat.ask(SID, "u1", " Does it come in XL? ", name="Ann")
    assert question == {
        "id": "q1",
        "viewer_id": "u1",
        "name": "Ann",
        "text": "Does it come in XL?",
        "at": question["at"],
        "upvotes": 0,
        "state": "open",
    }
    error = refused(chat.upvote, SID, "q1", "u1")
    assert (error.code, error.status) == ("OWN_QUESTION", 403)
    assert chat.upvote(SID, "q1", "u2") == 1
    error = refused(chat.upvote, SID, "q1", "u2")
    assert (error.code, error.status) == ("ALREADY_UPVOTED", 409)
    assert chat.upvote(SID, "q1", "u3") == 2
    for qid in ("q2", "q0", "x", "q1:u2", None):
        error = refused(chat.upvote, SID, qid, "u2")
        assert (error.code, error.status, error.field) == ("QUESTION_NOT_FOUND", 404, "question_id")
    chat.answer(SID, "q1")
    assert refused(chat.upvote, SID, "q1", "u4").code == "QUESTION_CLOSED"
    error = refused(chat.dismiss, SID, "q1")
    assert (error.code, error.details) == ("QUESTION_CLOSED", {"state": "answered"})
    assert refused(chat.answer, SID, "q9").code == "QUESTION_NOT_FOUND"


def test_top_questions_by_upvotes_then_age(chat, clock):
    for i in range(1, 13):  # q10..q12 check that ids are ordered as numbers, not strings
        chat.ask(SID, f"asker{i}", f"question {i}?")
        clock.advance(1)
    for qid, votes in [("q3", 3), ("q12", 3), ("q2", 1), ("q10", 2)]:
        for v in range(votes):
            chat.upvote(SID, qid, f"fan{v}")
    top = chat.top_questions(SID)
    assert [(q["id"], q["upvotes"]) for q in top] == [
        ("q3", 3),
        ("q12", 3),
        ("q10", 2),
        ("q2", 1),
        ("q1", 0),
    ]
    assert top[0]["text"] == "question 3?" and top[0]["state"] == "open"
    chat.answer(SID, "q3")
    chat.dismiss(SID, "q12")
    assert [q["id"] for q in chat.top_questions(SID, 3)] == ["q10", "q2", "q1"]
    assert chat.top_questions(SID, 0) == []
    report = {q["id"]: (q["upvotes"], q["state"]) for q in chat.questions(SID)}
    assert report["q3"] == (3, "answered") and report["q12"] == (3, "dismissed")
    assert report["q10"] == (2, "open") and len(report) == 12
    assert [q["id"] for q in chat.questions(SID)][:3] == ["q1", "q2", "q3"]


def test_questions_share_the_comment_bucket(chat):
    for _ in range(5):
        chat.comment(SID, "u1", "hi")
    assert refused(chat.ask, SID, "u1", "may I?").code == "RATE_LIMITED"


# -- errors ------------------------------------------------------------------------------------
def test_refusals_have_the_error_envelope(chat):
    chat.set_slow_mode(SID, 30)
    chat.comment(SID, "u1", "first")
    error = refused(chat.comment, SID, "u1", "second")
    assert error.to_dict() == {
        "error": {
            "code": "SLOW_MODE",
            "field": None,
            "message": error.message,
            "details": {"retry_after": 30.0},
        }
    }
    assert error.retry_after == 30
