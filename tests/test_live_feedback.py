"""The host's live feedback: tokens, sentiment and per-minute counters on a real Redis."""

from __future__ import annotations

import pytest

from app.sinks import redis_connect
from core.clock import FrozenClock
from core.errors import DomainError
from live import feedback as fb
from live.feedback import FeedbackCounters, sentiment, tokenize

SID = "7"


@pytest.fixture
def counters(redis_client, clock) -> FeedbackCounters:
    return FeedbackCounters(redis_client, clock)


@pytest.fixture
def minute_start(clock) -> float:
    """Move the clock to the start of a minute, so tests can count seconds within it."""
    clock.set((clock.now() // 60 + 1) * 60)
    return clock.now()


# -- tokenize ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("这件大衣 so warm!!", ["这件", "件大", "大衣", "warm"]),
        ("I LOVE this dress, it's the best", ["love", "dress", "best"]),
        ("Don't you love it? Isn't it great?", ["love", "great"]),
        ("a b c 1 x", []),  # Latin words need two characters
        ("size 38 or 40?", ["size", "38", "40"]),
        ("’Hello’ café", ["hello", "café"]),  # curly quotes trimmed, accents kept
        ("😍😍😍 wow 🔥", ["wow"]),
        ("!!! ??? ...", []),
        ("买", ["买"]),  # a lone character is kept...
        ("的", []),  # ...unless it is a stop character
        ("哈哈哈哈", []),  # bigrams of stop characters only
        ("我的天", ["的天"]),  # 我的 is stop-only, 的天 is not
        ("好看好看", ["好看", "看好", "好看"]),
        ("颜色很好看，想买！", ["颜色", "色很", "很好", "好看", "想买"]),
        ("红色XL有吗", ["红色", "xl"]),  # 有吗: stop characters only
        ("かわいい", ["かわ", "わい", "いい"]),
        ("예뻐요", ["예뻐", "뻐요"]),
        ("ＸＬ码", ["xl", "码"]),  # full-width letters are letters
        ("", []),
    ],
)
def test_tokenize(text, tokens):
    assert tokenize(text) == tokens


def test_stop_words_are_a_compact_list():
    assert 90 <= len(fb.STOP_WORDS) <= 160
    assert {"the", "and", "is", "this", "don't"} <= fb.STOP_WORDS
    assert not {"love", "price", "size"} & fb.STOP_WORDS


# -- sentiment ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "score"),
    [
        ("I love it", 1),
        ("so cheap!!", 1),  # cheap is good news when shopping
        ("beautiful colour", 1),
        ("that's a scam", -1),
        ("too expensive", -1),
        ("fake and ugly", -1),
        ("not good", -1),
        ("not bad at all", 1),
        ("isn't cheap", -1),
        ("not too expensive", 1),
        ("no, it's ugly", -1),  # negation stays within its clause
        ("love the colour but expensive and ugly", -1),
        ("what size is it?", 0),
        ("好看", 1),
        ("喜欢，好便宜", 1),
        ("漂亮 划算", 1),
        ("太贵了", -1),
        ("难看", -1),
        ("是假货吧", -1),
        ("质量差要退货", -1),
        ("不好看", -1),
        ("不贵", 1),
        ("不是很贵", 1),
        ("没有假货", 1),
        ("不错哦", 1),
        ("不好意思，问一下", 0),  # an apology, not a complaint
        ("假期快乐", 0),  # holiday, not fake
        ("差不多", 0),
        ("这件大衣 so warm!!", 1),
        ("好看 but expensive", 0),
        ("😍😍😍", 0),
        ("", 0),
    ],
)
def test_sentiment(text, score):
    assert sentiment(text) == score


def test_the_lexicon_has_about_forty_words_each_way():
    positive = len(fb.POSITIVE_EN) + sum(v > 0 for v in fb.LEXICON_ZH.values())
    negative = len(fb.NEGATIVE_EN) + sum(v < 0 for v in fb.LEXICON_ZH.values())
    assert positive >= 40 and negative >= 40


# -- counters ----------------------------------------------------------------------------------
def test_counts_per_minute_last_full_and_current(counters, clock, minute_start):
    counters.record_join(SID)
    counters.record_join(SID, 2)
    counters.record_comment(SID, "hello")
    counters.add_likes(SID, 40)
    clock.advance(60)  # the next minute
    counters.record_join(SID)
    counters.add_likes(SID, 250)
    counters.add_likes(SID, 10)
    clock.advance(15)
    snap = counters.snapshot(SID)
    assert snap["joins_per_min"] == {"last_full": 3, "current": 1}
    assert snap["likes_per_min"] == {"last_full": 40, "current": 260}
    assert snap["comments_per_min"] == {"last_full": 1, "current": 0}
    assert snap["minute"] == {
        "current_started_at": minute_start + 60,
        "current_elapsed_s": 15.0,
        "last_full_started_at": minute_start,
    }
    # a snapshot asked for an earlier time sees that minute as the current, partial one
    earlier = counters.snapshot(SID, now=minute_start + 59)
    assert earlier["joins_per_min"] == {"last_full": 0, "current": 3}
    assert earlier["comments_per_min"]["current"] == 1
    assert earlier["likes_per_min"]["current"] == 40
    assert (
        snap["totals"]
        == counters.totals(SID)
        == {
            "joins": 4,
            "comments": 1,
            "likes": 300,
            "positive": 0,
            "negative": 0,
            "viewers": 0,
            "peak_viewers": 0,
            "peak_at": None,
            "started_at": minute_start,
        }
    )


@pytest.mark.parametrize("n", [-1, 1.5, True, "3", None])
def test_likes_and_joins_take_whole_counts(counters, n):
    for call in (counters.add_likes, counters.record_join):
        with pytest.raises(DomainError) as info:
            call(SID, n)
        assert (info.value.code, info.value.field) == ("INVALID_COUNT", "n")


def test_peak_viewers_is_kept_across_clients(redis_server, counters, clock):
    other_client = redis_connect(redis_server, decode_responses=True)
    try:
        other = FeedbackCounters(other_client, FrozenClock(clock.now()))
        assert counters.set_viewers(SID, 10) == 10
        clock.advance(5)
        assert other.set_viewers(SID, 25) == 25
        assert counters.set_viewers(SID, 5) == 25
        assert other.set_viewers(SID, 0) == 25
        snap = counters.snapshot(SID)
        assert (snap["viewers"], snap["peak_viewers"]) == (0, 25)
        totals = counters.totals(SID)
        assert (totals["peak_viewers"], totals["peak_at"]) == (25, clock.now() - 5)
    finally:
        other_client.close()


@pytest.mark.parametrize("count", [-1, 2.5, True, "3"])
def test_viewer_counts_are_whole_numbers(counters, count):
    with pytest.raises(DomainError) as info:
        counters.set_viewers(SID, count)
    assert info.value.code == "INVALID_COUNT"


def test_sentiment_over_the_last_five_minutes(counters, clock, minute_start):
    assert counters.record_comment(SID, "so ugly") == -1
    clock.advance(60)
    assert counters.record_comment(SID, "好看！") == 1
    assert counters.record_comment(SID, "love it") == 1
    assert counters.record_comment(SID, "size?") == 0
    clock.advance(4 * 60 - 1)  # the last second of the window that still holds minute 0
    assert counters.snapshot(SID)["sentiment"] == {"positive": 2, "negative": 1}
    clock.advance(1)
    assert counters.snapshot(SID)["sentiment"] == {"positive": 2, "negative": 0}
    totals = counters.totals(SID)
    assert (totals["comments"], totals["positive"], totals["negative"]) == (4, 2, 1)


def test_top_words_over_five_minutes_drop_older_minutes(
    counters, clock, minute_start, redis_client
):
    counters.record_comment(SID, "old coat old coat")  # counted once per comment
    clock.advance(60)
    for text in ["这件大衣 so warm", "大衣好看", "warm coat", "warm scarf"]:
        counters.record_comment(SID, text)
    clock.advance(3 * 60)
    counters.record_comment(SID, "scarf please")
    snap = counters.snapshot(SID)
    assert snap["window_s"] == 300
    assert snap["top_words"][:4] == [("warm", 3), ("coat", 2), ("scarf", 2), ("大衣", 2)]
    assert ("old", 1) in snap["top_words"]
    assert len(snap["top_words"]) == 10  # the top 10 by default
    clock.advance(60)  # minute 0 leaves the window
    words = dict(counters.snapshot(SID)["top_words"])
    assert "old" not in words and words["coat"] == 1 and words["warm"] == 3
    clock.advance(3 * 60)  # only the "scarf please" minute is left
    assert counters.snapshot(SID)["top_words"] == [("please", 1), ("scarf", 1)]
    clock.advance(60)
    assert counters.snapshot(SID)["top_words"] == []
    assert not redis_client.exists(fb.top_key(SID))  # the scratch set is never left behind
    assert 0 < redis_client.ttl(fb.words_key(SID, int(minute_start // 60))) <= fb.MINUTE_TTL_S


def test_an_empty_stream_has_a_zero_snapshot(counters, clock):
    snap = counters.snapshot("nobody")
    assert (snap["viewers"], snap["peak_viewers"], snap["top_words"]) == (0, 0, [])
    assert snap["sentiment"] == {"positive": 0, "negative": 0}
    assert snap["totals"]["started_at"] is None and snap["at"] == clock.now()
