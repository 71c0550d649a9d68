"""The host's live feedback: words and sentiment of comments, and per-minute counters in Redis.

`tokenize` and `sentiment` are pure functions. `FeedbackCounters` keeps one hash and one sorted
set of words per stream and minute (expiring), plus a totals hash for the post-stream report,
all under the stream's hash tag `{l:<sid>}`.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import redis

from core.errors import ValidationFailed
from core.scripts import LuaScripts

from . import keys

# -- tokens ------------------------------------------------------------------------------------
STOP_WORDS = frozenset(
    """
a about above after again against all also am an and any are aren't as at be because been
before being below between both but by can can't cannot could couldn't did didn't do does
doesn't doing don't down during each few for from further get got had has have having he her
here hers him his how i i'm i've if in into is isn't it it's its itself just let's me more most
my no nor not now of off oh ok okay on once only or other our ours out over own really same she
should so some such than that that's the their them then there these they this those through
to too under until up very was we were what when where which while who whom why will with
would yeah yes you you're your yours lol im u ur
""".split()
)

# Characters that carry no topic on their own; a bigram made only of these is dropped.
STOP_CHARS = frozenset(
    "的了是我你他她它们在有和就不也都很吗呢吧啊哈这那个一"
    "着么呀哦嗯啦把被给让还又与及或而之其说要会能去来"
    "上下到对为得地嘛哇喔噢哎诶"
)

# Han (with extensions and compatibility ideographs), Hiragana, Katakana, Hangul
_CJK_RANGES = (
    (0x3040, 0x30FF),
    (0x31F0, 0x31FF),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0x1100, 0x11FF),
    (0x3130, 0x318F),
    (0xAC00, 0xD7AF),
    (0x20000, 0x2FA1F),
)
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\uff07": "'"})


def _is_cjk(ch: str) -> bool:
    code = ord(ch)
    return any(low <= code <= high for low, high in _CJK_RANGES)


def _runs(text: str) -> list[tuple[str, str]]:
    """Split lower-cased text into ('cjk', run) and ('latin', word) pieces; drop the rest."""
    out: list[tuple[str, str]] = []
    kind, current = "", []
    # NFKC first: full-width Latin (ＸＬ) typed on Chinese keyboards becomes plain letters
    for ch in unicodedata.normalize("NFKC", text).lower().translate(_APOSTROPHES) + " ":
        if _is_cjk(ch):
            this = "cjk"
        elif ch.isalnum() or ch == "'":
            this = "latin"
        else:
            this = ""
        if this != kind:
            if kind and current:
                out.append((kind, "".join(current)))
            kind, current = this, []
        if this:
            current.append(ch)
    return out


def tokenize(text: str) -> list[str]:
    """Split a comment into topic words: Latin words minus stop words, CJK character bigrams."""
    tokens: list[str] = []
    for kind, run in _runs(text):
        if kind == "latin":
            word = run.strip("'")
            if len(word) >= 2 and word not in STOP_WORDS:
                tokens.append(word)
        elif len(run) == 1:
            if run not in STOP_CHARS:
                tokens.append(run)
        else:
            tokens.extend(
                run[i : i + 2] for i in range(len(run) - 1) if not set(run[i : i + 2]) <= STOP_CHARS
            )
    return tokens


# -- sentiment ---------------------------------------------------------------------------------
POSITIVE_EN = frozenset(
    """
love loved lovely great good nice beautiful pretty gorgeous cute cheap affordable bargain
perfect amazing awesome excellent wow soft comfy comfortable warm recommend best stylish
elegant fantastic wonderful want
""".split()
)
NEGATIVE_EN = frozenset(
    """
ugly expensive pricey overpriced fake scam bad terrible awful horrible poor broken hate worst
boring disappointed disappointing refund ripoff junk trash useless waste fraud dirty meh thin
""".split()
)
NEGATORS_EN = frozenset(
    "not no never hardly without nothing isn't aren't wasn't weren't don't "
    "doesn't didn't can't won't".split()
)

# Chinese entries scored 0 are there to be matched first, so that a word that merely contains a
# lexicon character (假期 holiday, 差不多 about, 好像 seems, 贵宾 VIP) is not counted.
LEXICON_ZH: dict[str, int] = {
    **dict.fromkeys(
        "好看 喜欢 便宜 漂亮 划算 好 爱 值得 超值 实惠 优惠 不错 赞 棒 "
        "舒服 可爱 好用 好评 推荐 想要 必买 种草 时尚 精致 太美 好美 "
        "完美 质量好 回购".split(),
        1,
    ),
    **dict.fromkeys(
        "贵 难看 假 差 退货 丑 假货 骗 骗子 坑 垃圾 失望 差评 劣质 难用 "
        "退款 不值 掉色 起球 质量差 智商税 后悔 太贵".split(),
        -1,
    ),
    **dict.fromkeys(
        "差不多 差点 出差 差价 假期 放假 请假 假如 假设 贵宾 贵州 宝贵 "
        "珍贵 好的 好像 好多 好久 好几 你好 还好 只好 最好 正好 好吧 "
        "不好意思 爱心".split(),
        0,
    ),
}
_ZH_LONGEST = max(len(w) for w in LEXICON_ZH)
NEGATORS_ZH = frozenset("不没别无非未")


def _english_score(words: list[str]) -> int:
    score = 0
    for i, word in enumerate(words):
        polarity = 1 if word in POSITIVE_EN else -1 if word in NEGATIVE_EN else 0
        if polarity and any(
            w in NEGATORS_EN or w.endswith("n't") for w in words[max(0, i - 3) : i]
        ):
            polarity = -polarity  # "not cheap", "isn't that great", "not too expensive"
        score += polarity
    return score


def _chinese_score(run: str) -> int:
    score, i, free_from = 0, 0, 0
    while i < len(run):
        for size in range(min(_ZH_LONGEST, len(run) - i), 0, -1):
            word = run[i : i + size]
            if word in LEXICON_ZH:
                polarity = LEXICON_ZH[word]
                # a negator in the three characters before (not inside an earlier match):
                # 不好看, 不贵, 不是很贵, 没有假货
                if polarity and NEGATORS_ZH & set(run[max(free_from, i - 3) : i]):
                    polarity = -polarity
                score += polarity
                i += size
                free_from = i
                break
        else:
            i += 1
    return score


def sentiment(text: str) -> int:
    """Return the sign of a comment's sentiment: 1 positive, -1 negative, 0 neither."""
    score = 0
    # negation reaches back within a clause only: in "no, it's ugly" the "no" flips nothing
    for piece in re.split(r"[.,;:!?。，；：！？\n]+", text):
        runs = _runs(piece)
        score += _english_score([run.strip("'") for kind, run in runs if kind == "latin"])
        score += sum(_chinese_score(run) for kind, run in runs if kind == "cjk")
    return (score > 0) - (score < 0)


# -- counters ----------------------------------------------------------------------------------
MINUTE_TTL_S = 3600  # minute buckets outlive the 5-minute window, for a later per-minute chart
WINDOW_MINUTES = 5
COUNTERS = ("joins", "comments", "likes", "positive", "negative")

# KEYS: totals   ARGV: viewers now, now
PEAK = """
redis.call('HSET', KEYS[1], 'viewers', ARGV[1])
redis.call('HSETNX', KEYS[1], 'started_at', ARGV[2])
local peak = tonumber(redis.call('HGET', KEYS[1], 'peak_viewers') or '-1')
if tonumber(ARGV[1]) > peak then
  redis.call('HSET', KEYS[1], 'peak_viewers', ARGV[1], 'peak_at', ARGV[2])
  return tonumber(ARGV[1])
end
return peak
"""


def totals_key(sid: str) -> str:
    """Return the totals hash: counters, viewers, peak_viewers, peak_at, started_at."""
    return f"{keys.stream(sid)}:fb"


def minute_key(sid: str, minute: int) -> str:
    """Return the expiring hash of one minute's joins, comments, likes, positive, negative."""
    return f"{keys.stream(sid)}:fb:{minute}"


def words_key(sid: str, minute: int) -> str:
    """Return the expiring sorted set of one minute's words -> comments using them."""
    return f"{keys.stream(sid)}:fb:{minute}:words"


def top_key(sid: str) -> str:
    """Return the scratch key of the 5-minute word union (written and deleted in one MULTI)."""
    return f"{keys.stream(sid)}:fb:top"


class FeedbackCounters:
    """Per-stream, per-minute counters of joins, comments, likes, sentiment, words and viewers."""

    def __init__(self, r: redis.Redis, clock, *, top_n: int = 10) -> None:
        self.r = r
        self.clock = clock
        self.top_n = top_n
        self.scripts = LuaScripts(r, {"peak": PEAK})

    def record_join(self, sid: str, n: int = 1, *, now: float | None = None) -> None:
        """Count viewers joining."""
        self._count(sid, {"joins": _positive(n, "n")}, now)

    def add_likes(self, sid: str, n: int, *, now: float | None = None) -> None:
        """Count likes, many at once (the app aggregates them before calling)."""
        self._count(sid, {"likes": _positive(n, "n")}, now)

    def record_comment(self, sid: str, text: str, *, now: float | None = None) -> int:
        """Count a comment, its sentiment and its words; return the sentiment."""
        mood = sentiment(text)
        counts = {"comments": 1}
        if mood:
            counts["positive" if mood > 0 else "negative"] = 1
        # each word once per comment: the list shows how many comments mention it, and one
        # comment repeating a word cannot flood it
        self._count(sid, counts, now, words=set(tokenize(text)))
        return mood

    def set_viewers(self, sid: str, now_count: int) -> int:
        """Set the viewer count now and return the peak (kept atomically across processes)."""
        if isinstance(now_count, bool) or not isinstance(now_count, int) or now_count < 0:
            raise ValidationFailed(
                "a viewer count is a whole number >= 0", code="INVALID_COUNT", field="now_count"
            )
        return int(
            self.scripts.call("peak", [totals_key(sid)], [now_count, repr(self.clock.now())])
        )

    def snapshot(self, sid: str, now: float | None = None) -> dict[str, Any]:
        """Return viewers, per-minute rates, top words, sentiment (last 5 minutes) and totals."""
        now = self.clock.now() if now is None else now
        minute = int(now // 60)
        window = list(range(minute - WINDOW_MINUTES + 1, minute + 1))
        pipe = self.r.pipeline(transaction=True)
        pipe.hgetall(totals_key(sid))
        for m in window:
            pipe.hgetall(minute_key(sid, m))
        pipe.zunionstore(top_key(sid), [words_key(sid, m) for m in window])
        pipe.zrevrange(top_key(sid), 0, self.top_n - 1, withscores=True)
        pipe.delete(top_key(sid))
        replies = pipe.execute()
        totals_raw, minutes = replies[0], replies[1 : 1 + len(window)]
        top = replies[1 + len(window) + 1]
        current, last = minutes[-1], minutes[-2]

        def _rate(name: str) -> dict[str, int]:
            return {"last_full": int(last.get(name, 0)), "current": int(current.get(name, 0))}

        return {
            "at": now,
            "viewers": int(totals_raw.get("viewers", 0)),
            "peak_viewers": int(totals_raw.get("peak_viewers", 0)),
            # "last_full" is the minute before the current one; "current" is partial
            "minute": {
                "current_started_at": minute * 60.0,
                "current_elapsed_s": round(now - minute * 60.0, 3),
                "last_full_started_at": (minute - 1) * 60.0,
            },
            "joins_per_min": _rate("joins"),
            "comments_per_min": _rate("comments"),
            "likes_per_min": _rate("likes"),
            "window_s": WINDOW_MINUTES * 60,
            "top_words": sorted(((w, int(c)) for w, c in top), key=lambda wc: (-wc[1], wc[0])),
            "sentiment": {
                name: sum(int(m.get(name, 0)) for m in minutes) for name in ("positive", "negative")
            },
            "totals": _totals(totals_raw),
        }

    def totals(self, sid: str) -> dict[str, Any]:
        """Return the stream's totals since its first event (for the post-stream report)."""
        return _totals(self.r.hgetall(totals_key(sid)))

    def _count(
        self, sid: str, counts: dict[str, int], now: float | None, *, words: set[str] | None = None
    ) -> None:
        now = self.clock.now() if now is None else now
        minute = int(now // 60)
        pipe = self.r.pipeline(transaction=True)  # a snapshot sees a comment whole or not at all
        for name, n in counts.items():
            if n:
                pipe.hincrby(minute_key(sid, minute), name, n)
                pipe.hincrby(totals_key(sid), name, n)
        pipe.hsetnx(totals_key(sid), "started_at", repr(now))
        pipe.expire(minute_key(sid, minute), MINUTE_TTL_S)
        if words:
            for word in words:
                pipe.zincrby(words_key(sid, minute), 1, word)
            pipe.expire(words_key(sid, minute), MINUTE_TTL_S)
        pipe.execute()


def _positive(n: Any, field: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValidationFailed("a count is a whole number >= 0", code="INVALID_COUNT", field=field)
    return n


def _totals(raw: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {name: int(raw.get(name, 0)) for name in COUNTERS}
    out["viewers"] = int(raw.get("viewers", 0))
    out["peak_viewers"] = int(raw.get("peak_viewers", 0))
    out["peak_at"] = float(raw["peak_at"]) if "peak_at" in raw else None
    out["started_at"] = float(raw["started_at"]) if "started_at" in raw else None
    return out
