"""/live (viewers) and /host (a stream's host console): the live-stream room over Socket.IO.

Every broadcast goes to the stream's room on /live through the Redis message queue (so a host
on one process reaches viewers on every process) and into the stream's history with an offset,
from which a reconnecting viewer recovers what it missed.

While a stream is scheduled its hosts rehearse: their moves (pins, sold-out marks,
announcements, polls, slow mode, ...) reach only the stream's host consoles, outside the
history, so nothing of a rehearsal reaches or is replayed to viewers. When the stream goes
live, viewers hear `stream_status` and then the stage as set (`open_show`).

Admins may watch any stream's console: they get its state, feedback and broadcasts; every
move is refused to them (`forbidden_role`) and their connection stays.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from flask_socketio import join_room, leave_room
from pydantic import BaseModel, ConfigDict, Field

from core.errors import DomainError
from core.fields import Integer

from ..auth import Principal, roles
from .base import SecureNamespace, error_body, refusal
from .redelivery import LiveDeliveries

STREAM_ID = r"^[1-9][0-9]{0,11}$"


def viewers_room(sid: str) -> str:
    """Return the room of a stream's viewers on /live."""
    return f"live:{sid}"


def host_room(sid: str) -> str:
    """Return the room of a stream's host consoles on /host."""
    return f"host:{sid}"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JoinIn(_Body):
    stream_id: str = Field(pattern=STREAM_ID)
    offset: Integer | None = Field(default=None, ge=0, description="the last offset seen")


class TextIn(_Body):
    text: str = Field(max_length=2000)


class LikeIn(_Body):
    count: Integer = Field(default=1, ge=1, le=100)


class VoteIn(_Body):
    poll_id: str = Field(max_length=20)
    option: Integer = Field(ge=0, le=5)


class QuestionIn(_Body):
    question_id: str = Field(max_length=20)


class PollRef(_Body):
    poll_id: str = Field(max_length=20)


class ClaimIn(_Body):
    drop_id: str = Field(pattern=r"^d[1-9][0-9]{0,8}$")


class ProductRef(_Body):
    product_id: str = Field(pattern=r"^p[1-9][0-9]{0,8}$")


class SoldOutIn(ProductRef):
    sold_out: bool = Field(strict=True, description="true: sold out; false: back in stock")


class PollIn(_Body):
    question: str = Field(max_length=200)
    options: list[str] = Field(max_length=10)
    duration_s: Integer = Field(ge=1, le=86_400)


class DropIn(_Body):
    offer_id: str = Field(pattern=r"^o[1-9][0-9]{0,8}$")
    quantity: Integer = Field(ge=1, le=100_000)
    window_s: Integer = Field(ge=1, le=3_600)


class ViewerIn(_Body):
    viewer_id: str = Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")


class MuteIn(ViewerIn):
    seconds: Integer = Field(ge=1, le=86_400)


class CommentRef(_Body):
    comment_id: str = Field(max_length=20)


class SlowModeIn(_Body):
    seconds: Integer = Field(ge=0, le=300)


class WordsIn(_Body):
    words: list[str] = Field(max_length=200)


def _live():
    return current_app.extensions["live"]


def parse(model: type[_Body], payload: Any) -> Any:
    """Validate an event's payload object (none counts as {})."""
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise DomainError("payload must be an object", code="invalid_payload", field="payload")
    return model.model_validate(payload)


def broadcast(sid: str, name: str, payload: dict[str, Any]) -> int:
    """Send an event to every viewer of a stream (any process) and to its host consoles on
    /host (so every console of the stream sees the same room: comments to moderate, votes,
    another host's pins), and record it; return its offset, which rides in the payload so
    clients can recover from it."""
    offset = _live().history.append(sid, name, payload)
    socketio = current_app.extensions["socketio"]
    body = {**payload, "offset": offset}
    socketio.emit(name, body, to=viewers_room(sid), namespace="/live")
    socketio.emit(name, body, to=host_room(sid), namespace="/host")
    return offset


def stage_broadcast(sid: str, name: str, payload: dict[str, Any]) -> int | None:
    """Broadcast a host's move, unless the stream is in rehearsal (scheduled): then it goes
    to the stream's host consoles only, with `rehearsal: true`, no offset and outside the
    history (viewers neither hear it nor recover it); return the offset, or None.

    The status is read after the move was stored: a move read as rehearsal was stored before
    the stream went live, so the go-live's `open_show` (which reads the stage after the
    status changed) carries it to viewers.
    """
    if _live().streams.status(sid) == "scheduled":
        socketio = current_app.extensions["socketio"]
        socketio.emit(name, {**payload, "rehearsal": True}, to=host_room(sid), namespace="/host")
        return None
    return broadcast(sid, name, payload)


def open_show(sid: str) -> None:
    """The stream has just gone live: viewers hear `stream_status` and then the stage as the
    rehearsal left it (`pinned`, `announcement`, the open `poll`, `slow_mode`), each an event
    of the history like any other."""
    live = _live()
    broadcast(sid, "stream_status", {"status": "live"})
    pinned = live.stage.pinned(sid)
    if pinned:
        broadcast(sid, "pinned", {"products": pinned})
    announcement = live.stage.announcement(sid)
    if announcement:
        broadcast(sid, "announcement", announcement)
    poll = live.chat.poll_state(sid)
    if poll and poll["open"]:
        broadcast(sid, "poll", poll)
    slow = live.chat.moderation_state(sid)["slow_mode_s"]
    if slow:
        broadcast(sid, "slow_mode", {"seconds": slow})


def announce_move(stream: dict[str, Any], changed: bool) -> None:
    """Tell viewers about a stream's move (a repeated move tells nothing again): going live
    opens the show (`open_show`), ending sends `stream_status` ended."""
    if not changed:
        return
    if stream["status"] == "live":
        open_show(stream["id"])
    else:
        broadcast(stream["id"], "stream_status", {"status": stream["status"]})


class LiveNamespace(SecureNamespace):
    """Viewers: join a stream's room, comment, like, vote, ask, upvote and claim drops."""

    connect_roles = ("shopper", "guest")

    def __init__(self, namespace: str) -> None:
        super().__init__(namespace)
        self.watching: dict[str, str] = {}  # connection -> stream (connections are local)
        self.deliveries = LiveDeliveries(self.namespace)  # offsets delivered per room here

    def _stream(self) -> str:
        sid = self.watching.get(request.sid)
        if sid is None:
            raise DomainError("join a stream first", code="NOT_JOINED", field="stream_id")
        return sid

    def _live_stream(self) -> str:
        sid = self._stream()
        if _live().streams.get(sid)["status"] != "live":
            raise DomainError("the stream is not live", code="STREAM_NOT_LIVE", status=409)
        return sid

    @roles("shopper", "guest")
    def on_join(self, payload: Any) -> dict[str, Any]:
        """Join a stream: the ack carries the current state, or what was missed since offset."""
        body = parse(JoinIn, payload)
        live = _live()
        live.streams.get(body.stream_id)  # 404 for an unknown stream
        previous = self.watching.get(request.sid)
        if previous and previous != body.stream_id:
            self._leave(previous)
        join_room(viewers_room(body.stream_id))
        self.watching[request.sid] = body.stream_id
        viewers = live.presence.join(body.stream_id, request.sid, self.principal().user_id)
        live.feedback.record_join(body.stream_id)
        live.feedback.set_viewers(body.stream_id, viewers)
        if body.offset is not None:
            ack = live.room.recover(body.stream_id, body.offset)
        else:
            ack = {"recovered": False, "state": live.room.state(body.stream_id)}
        current = ack["offset"] if ack["recovered"] else ack["state"]["offset"]
        self.deliveries.joined(viewers_room(body.stream_id), current)
        return ack

    @roles("shopper", "guest")
    def on_leave(self, payload: Any = None) -> dict[str, Any]:
        """Leave the stream this connection watches."""
        sid = self._stream()
        self._leave(sid)
        return {"left": sid}

    def _leave(self, sid: str) -> None:
        leave_room(viewers_room(sid))
        self.watching.pop(request.sid, None)
        _live().presence.leave(sid, request.sid, self.principal().user_id)

    def on_disconnect(self, reason: Any = None) -> None:
        sid = self.watching.pop(request.sid, None)
        who = self.principals.get(request.sid)
        if sid is not None and who is not None:
            try:
                _live().presence.leave(sid, request.sid, who.user_id)
            except Exception:  # presence heals by expiry anyway
                pass
        super().on_disconnect(reason)

    @roles("shopper")
    def on_comment(self, payload: Any) -> dict[str, Any]:
        """Post a comment (moderation and rate limits apply); everyone hears `comment`."""
        body = parse(TextIn, payload)
        sid = self._live_stream()
        who = self.principal()
        live = _live()
        comment = live.chat.comment(sid, who.user_id, body.text)
        live.feedback.record_comment(sid, comment["text"])
        live.reports.log_comment(sid, comment)
        broadcast(sid, "comment", comment)
        return {"comment": comment}

    @roles("shopper")
    def on_like(self, payload: Any = None) -> dict[str, Any]:
        """Like, at any rate: counts are summed and broadcast by the room at most once a second."""
        body = parse(LikeIn, payload)
        sid = self._live_stream()
        _live().feedback.add_likes(sid, body.count)
        return {"ok": True}

    @roles("shopper")
    def on_vote(self, payload: Any) -> dict[str, Any]:
        """Vote in the open poll, once; everyone hears the new tallies."""
        body = parse(VoteIn, payload)
        sid = self._live_stream()
        result = _live().chat.vote(sid, body.poll_id, self.principal().user_id, body.option)
        broadcast(sid, "poll_tallies", {"poll_id": body.poll_id, "tallies": result["tallies"]})
        return result

    @roles("shopper")
    def on_ask(self, payload: Any) -> dict[str, Any]:
        """Ask the host a question; everyone hears `question`."""
        body = parse(TextIn, payload)
        sid = self._live_stream()
        question = _live().chat.ask(sid, self.principal().user_id, body.text)
        broadcast(sid, "question", question)
        return {"question": question}

    @roles("shopper")
    def on_upvote(self, payload: Any) -> dict[str, Any]:
        """Upvote someone else's question, once."""
        body = parse(QuestionIn, payload)
        sid = self._live_stream()
        votes = _live().chat.upvote(sid, body.question_id, self.principal().user_id)
        return {"question_id": body.question_id, "upvotes": votes}

    @roles("shopper")
    def on_claim(self, payload: Any) -> dict[str, Any]:
        """Claim a drop: the first N win (ack with the coupon); everyone hears when it sells out."""
        body = parse(ClaimIn, payload)
        sid = self._live_stream()
        result = _live().drops.claim(sid, body.drop_id, self.principal().user_id)
        if result["sold_out"] and result["outcome"] == "won":
            broadcast(sid, "drop_sold_out", {"drop_id": body.drop_id})
        return result


class HostNamespace(SecureNamespace):
    """A stream's host console: connect with the stream's id; its hosts are admitted, and
    admins, who watch (state, feedback and the room's broadcasts; every move is host-only)."""

    connect_roles = ("host", "admin")

    def __init__(self, namespace: str) -> None:
        super().__init__(namespace)
        self.streams: dict[str, str] = {}  # connection -> the stream it hosts

    def on_connect(self, auth: Any = None) -> None:
        sid = auth.get("stream_id") if isinstance(auth, dict) else None
        sid = sid or request.args.get("stream_id")
        if not isinstance(sid, str) or not sid.isdigit():
            raise refusal(error_body("stream_required", "connect with auth.stream_id", "stream_id"))
        super().on_connect(auth)
        who = self.principals[request.sid]
        try:
            if who.role == "admin":  # watches any stream; not among its hosts' consoles
                _live().streams.get(sid)
            else:
                _live().streams.open_console(sid, request.sid, who.user_id)
        except DomainError as exc:
            self.principals.pop(request.sid, None)
            current_app.extensions["accounts"].forget_socket(who, self.namespace, request.sid)
            raise refusal(exc.to_dict()) from None
        self.streams[request.sid] = sid
        join_room(host_room(sid))

    def joined(self, who: Principal) -> None:
        """Rooms are joined in on_connect, once the stream is known."""

    def on_disconnect(self, reason: Any = None) -> None:
        sid = self.streams.pop(request.sid, None)
        if sid is not None:
            try:
                _live().streams.close_console(sid, request.sid)
            except Exception:  # a stale entry only means a no-op disconnect later
                pass
        super().on_disconnect(reason)

    def _stream(self) -> dict[str, Any]:
        """Return this console's stream, checking that the caller is still one of its hosts
        (a host taken off the stream is refused with not_your_stream from then on)."""
        return _live().streams.hosted(self.streams[request.sid], self.principal().user_id)

    def _sid(self) -> str:
        return self._stream()["id"]

    def _watched(self) -> str:
        """Return this console's stream id for a read: an admin watches any stream, a host
        only while still one of its hosts."""
        if self.principal().role == "admin":
            return self.streams[request.sid]
        return self._sid()

    def _caller(self):
        from live.streams import Caller

        who = self.principal()
        return Caller(who.user_id, who.role)

    @roles("host", "admin")
    def on_state(self, payload: Any = None) -> dict[str, Any]:
        """Ack with the room's state now (as a viewer's join gets it, with the rehearsal's
        stage too): a console that (re)connects draws pins, poll, announcement, comments and
        questions from it."""
        sid = self._watched()
        live = _live()
        state = live.room.state(sid, console=True)
        moderation = live.chat.moderation_state(sid)
        state.update({k: moderation[k] for k in ("banned_words", "muted", "banned")})
        return state

    @roles("host")
    def on_start(self, payload: Any = None) -> dict[str, Any]:
        """Go live; viewers hear `stream_status` and then the rehearsed stage."""
        stream, changed = _live().streams.move(  # checks the hosts too
            self.streams[request.sid], "live", self._caller()
        )
        announce_move(stream, changed)
        return {"status": stream["status"]}

    @roles("host")
    def on_end(self, payload: Any = None) -> dict[str, Any]:
        """End the stream; viewers hear `stream_status`."""
        stream, changed = _live().streams.move(  # checks the hosts too
            self.streams[request.sid], "ended", self._caller()
        )
        announce_move(stream, changed)
        return {"status": stream["status"]}

    @roles("host")
    def on_pin(self, payload: Any) -> dict[str, Any]:
        """Pin a product (at most three); viewers hear `pinned`."""
        body = parse(ProductRef, payload)
        sid = self._sid()
        pinned = _live().stage.pin(sid, body.product_id)
        stage_broadcast(sid, "pinned", {"products": pinned})
        return {"pinned": pinned}

    @roles("host")
    def on_unpin(self, payload: Any) -> dict[str, Any]:
        """Unpin a product; viewers hear `pinned`."""
        body = parse(ProductRef, payload)
        sid = self._sid()
        pinned = _live().stage.unpin(sid, body.product_id)
        stage_broadcast(sid, "pinned", {"products": pinned})
        return {"pinned": pinned}

    @roles("host")
    def on_sold_out(self, payload: Any) -> dict[str, Any]:
        """Mark a product sold out, or back in stock; viewers hear `product` and, when the
        product is pinned, `pinned` (so pinned lists carry the mark)."""
        body = parse(SoldOutIn, payload)
        sid = self._sid()
        live = _live()
        product = live.streams.set_sold_out(sid, body.product_id, body.sold_out)
        pinned = live.stage.pinned(sid)
        stage_broadcast(sid, "product", product)
        if any(p["id"] == product["id"] for p in pinned):
            stage_broadcast(sid, "pinned", {"products": pinned})
        return {"product": product, "pinned": pinned}

    @roles("host")
    def on_announce(self, payload: Any) -> dict[str, Any]:
        """Announce something; viewers hear `announcement`."""
        body = parse(TextIn, payload)
        sid = self._sid()
        record = _live().stage.announce(sid, body.text)
        stage_broadcast(sid, "announcement", record)
        return record

    @roles("host")
    def on_poll_start(self, payload: Any) -> dict[str, Any]:
        """Open a poll (2-6 options); viewers hear `poll`."""
        body = parse(PollIn, payload)
        sid = self._sid()
        poll = _live().chat.start_poll(sid, body.question, body.options, body.duration_s)
        stage_broadcast(sid, "poll", poll)
        return poll

    @roles("host")
    def on_poll_close(self, payload: Any) -> dict[str, Any]:
        """Close the poll; viewers hear `poll` with the final tallies."""
        body = parse(PollRef, payload)
        sid = self._sid()
        poll = _live().chat.close_poll(sid, body.poll_id)
        stage_broadcast(sid, "poll", poll)
        return poll

    @roles("host")
    def on_drop(self, payload: Any) -> dict[str, Any]:
        """Drop a coupon: N for the quickest viewers within the window; viewers hear `drop`."""
        body = parse(DropIn, payload)
        stream = self._stream()
        drop = _live().drops.start(stream, body.offer_id, body.quantity, body.window_s)
        stage_broadcast(stream["id"], "drop", drop)
        return drop

    @roles("host")
    def on_delete_comment(self, payload: Any) -> dict[str, Any]:
        """Delete a comment; viewers hear `comment_deleted`."""
        body = parse(CommentRef, payload)
        sid = self._sid()
        _live().chat.delete_comment(sid, body.comment_id)
        stage_broadcast(sid, "comment_deleted", {"comment_id": body.comment_id})
        return {"deleted": body.comment_id}

    @roles("host")
    def on_pin_comment(self, payload: Any) -> dict[str, Any]:
        """Pin a comment; viewers hear `comment_pinned`."""
        body = parse(CommentRef, payload)
        sid = self._sid()
        comment = _live().chat.pin_comment(sid, body.comment_id)
        stage_broadcast(sid, "comment_pinned", comment)
        return comment

    @roles("host")
    def on_answer(self, payload: Any) -> dict[str, Any]:
        """Mark a question answered (it leaves the top list); everyone hears
        `question_answered`."""
        body = parse(QuestionIn, payload)
        sid = self._sid()
        _live().chat.answer(sid, body.question_id)
        stage_broadcast(sid, "question_answered", {"question_id": body.question_id})
        return {"question_id": body.question_id, "state": "answered"}

    @roles("host")
    def on_mute(self, payload: Any) -> dict[str, Any]:
        """Mute a viewer for some seconds."""
        body = parse(MuteIn, payload)
        until = _live().chat.mute(self._sid(), body.viewer_id, body.seconds)
        return {"viewer_id": body.viewer_id, "muted_until": until}

    @roles("host")
    def on_ban(self, payload: Any) -> dict[str, Any]:
        """Ban a viewer from commenting, voting and asking in this stream."""
        body = parse(ViewerIn, payload)
        _live().chat.ban(self._sid(), body.viewer_id)
        return {"viewer_id": body.viewer_id, "banned": True}

    @roles("host")
    def on_slow_mode(self, payload: Any) -> dict[str, Any]:
        """Set slow mode (seconds between one viewer's comments; 0 turns it off)."""
        body = parse(SlowModeIn, payload)
        sid = self._sid()
        _live().chat.set_slow_mode(sid, body.seconds)
        stage_broadcast(sid, "slow_mode", {"seconds": body.seconds})
        return {"seconds": body.seconds}

    @roles("host")
    def on_banned_words(self, payload: Any) -> dict[str, Any]:
        """Replace the banned-word list."""
        body = parse(WordsIn, payload)
        return {"words": _live().chat.set_banned_words(self._sid(), body.words)}

    @roles("host", "admin")
    def on_feedback(self, payload: Any = None) -> dict[str, Any]:
        """Ack with the live feedback now (the console also receives it every 2 s)."""
        sid = self._watched()
        live = _live()
        snapshot = live.feedback.snapshot(sid)
        snapshot["viewers"] = live.presence.count(sid)
        snapshot["poll"] = live.chat.poll_state(sid)
        snapshot["drop"] = live.drops.active(sid)
        snapshot["questions"] = live.chat.top_questions(sid)
        return snapshot
