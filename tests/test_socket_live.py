"""The /live and /host namespaces with the Flask-SocketIO test client (in process)."""

from __future__ import annotations

import pytest

from promotions.models import CampaignIn, OfferIn

from .conftest import T0


@pytest.fixture
def setup(app, client, auth):
    promos = app.extensions["promotions"]
    cid = promos.campaigns.create(
        CampaignIn(name="c", starts_at=T0 - 60, ends_at=T0 + 86400), actor="m"
    )["id"]
    oid = promos.campaigns.create_offer(
        cid,
        OfferIn(name="flash", kind="amount_off", amount_off_fen=1000, channels=["live_drop"]),
        actor="m",
    )["id"]
    promos.campaigns.transition(cid, "scheduled", actor="m")
    host = auth.user("host")
    marketer, _ = auth.headers("marketer")
    stream = client.post(
        "/api/streams",
        headers=marketer,
        json={
            "title": "t",
            "brand": "b",
            "playback_url": "https://v.example/x",
            "hosts": [host["user"]["id"]],
            "starts_at": T0,
            "campaign_id": cid,
        },
    ).get_json()
    product = client.post(
        f"/api/streams/{stream['id']}/products",
        headers=marketer,
        json={"name": "coat", "price_fen": 100},
    ).get_json()
    socketio = app.extensions["socketio"]

    def connect(namespace, token, **auth_extra):
        return socketio.test_client(
            app, namespace=namespace, auth={"token": token, **auth_extra}, flask_test_client=client
        )

    def viewer():
        headers, user = auth.headers("shopper")
        sock = connect("/live", headers["Authorization"][7:])
        return sock, user["id"]

    host_sock = connect("/host", host["token"], stream_id=stream["id"])
    return {
        "stream": stream,
        "sid": stream["id"],
        "oid": oid,
        "pid": product["id"],
        "host": host_sock,
        "host_token": host["token"],
        "viewer": viewer,
        "connect": connect,
        "auth": auth,
    }


def names(sock, ns="/live"):
    return [m["name"] for m in sock.get_received(ns)]


def test_only_the_streams_hosts_connect_to_its_console(setup):
    assert setup["host"].is_connected("/host")
    other = setup["auth"].user("host")
    assert not setup["connect"]("/host", other["token"], stream_id=setup["sid"]).is_connected(
        "/host"
    )
    assert not setup["connect"]("/host", setup["auth"].user("host")["token"]).is_connected(
        "/host"
    )  # no stream id
    shopper = setup["auth"].signup()
    assert not setup["connect"]("/host", shopper["token"], stream_id=setup["sid"]).is_connected(
        "/host"
    )


def test_the_console_reads_the_rooms_state_on_connect_also_in_rehearsal(setup):
    host, sid = setup["host"], setup["sid"]
    host.emit("pin", {"product_id": setup["pid"]}, namespace="/host", callback=True)
    host.emit("announce", {"text": "doors open"}, namespace="/host", callback=True)
    host.emit("banned_words", {"words": ["spam"]}, namespace="/host", callback=True)
    poll = host.emit(
        "poll_start",
        {"question": "Colour?", "options": ["red", "blue"], "duration_s": 60},
        namespace="/host",
        callback=True,
    )
    # A second console of the same host (a reload) gets the same state from `state`.
    again = setup["connect"]("/host", setup["host_token"], stream_id=sid)
    state = again.emit("state", None, namespace="/host", callback=True)
    assert state["stream"]["status"] == "scheduled"
    assert [p["id"] for p in state["pinned"]] == [setup["pid"]]
    assert state["announcement"]["text"] == "doors open"
    assert state["poll"]["id"] == poll["id"] and state["poll"]["tallies"] == [0, 0]
    assert state["banned_words"] == ["spam"]
    assert state["muted"] == [] and state["banned"] == []
    assert [p["id"] for p in state["products"]] == [setup["pid"]]


def test_consoles_hear_the_rooms_broadcasts_and_mark_questions_answered(setup):
    host, sid = setup["host"], setup["sid"]
    other = setup["connect"]("/host", setup["host_token"], stream_id=sid)
    alice, _ = setup["viewer"]()
    bob, _ = setup["viewer"]()
    for sock in (alice, bob):
        sock.emit("join", {"stream_id": sid}, namespace="/live", callback=True)
    host.emit("start", {}, namespace="/host", callback=True)
    other.get_received("/host")
    alice.emit("comment", {"text": "hello"}, namespace="/live", callback=True)
    asked = bob.emit("ask", {"text": "size?"}, namespace="/live", callback=True)["question"]
    host.emit("pin", {"product_id": setup["pid"]}, namespace="/host", callback=True)
    heard = other.get_received("/host")
    assert [m["name"] for m in heard] == ["comment", "question", "pinned"]
    assert heard[0]["args"][0]["text"] == "hello" and "offset" in heard[0]["args"][0]
    bob.get_received("/live")
    ack = host.emit("answer", {"question_id": asked["id"]}, namespace="/host", callback=True)
    assert ack == {"question_id": asked["id"], "state": "answered"}
    [answered] = [m["args"][0] for m in bob.get_received("/live")]
    assert answered["question_id"] == asked["id"]
    again = host.emit("answer", {"question_id": asked["id"]}, namespace="/host", callback=True)
    assert again["error"]["code"] == "QUESTION_CLOSED"
    state = host.emit("state", None, namespace="/host", callback=True)
    assert state["questions"] == []


def test_a_live_session_end_to_end(setup):
    host, sid = setup["host"], setup["sid"]
    alice, alice_id = setup["viewer"]()
    bob, _ = setup["viewer"]()
    joined = alice.emit("join", {"stream_id": sid}, namespace="/live", callback=True)
    assert joined["state"]["stream"]["status"] == "scheduled"
    bob.emit("join", {"stream_id": sid}, namespace="/live", callback=True)
    early = alice.emit("comment", {"text": "hi"}, namespace="/live", callback=True)
    assert early["error"]["code"] == "STREAM_NOT_LIVE"
    assert host.emit("start", {}, namespace="/host", callback=True) == {"status": "live"}
    assert (
        host.emit("pin", {"product_id": setup["pid"]}, namespace="/host", callback=True)["pinned"][
            0
        ]["id"]
        == setup["pid"]
    )
    sent = alice.emit("comment", {"text": "这件大衣 so warm"}, namespace="/live", callback=True)
    assert sent["comment"]["text"] == "这件大衣 so warm"
    poll = host.emit(
        "poll_start",
        {"question": "Colour?", "options": ["red", "blue"], "duration_s": 60},
        namespace="/host",
        callback=True,
    )
    assert bob.emit("vote", {"poll_id": poll["id"], "option": 1}, namespace="/live", callback=True)[
        "tallies"
    ] == [0, 1]
    again = bob.emit("vote", {"poll_id": poll["id"], "option": 0}, namespace="/live", callback=True)
    assert again["error"]["code"] == "ALREADY_VOTED" and bob.is_connected("/live")
    drop = host.emit(
        "drop",
        {"offer_id": setup["oid"], "quantity": 1, "window_s": 30},
        namespace="/host",
        callback=True,
    )
    won = alice.emit("claim", {"drop_id": drop["id"]}, namespace="/live", callback=True)
    assert won["outcome"] == "won" and won["coupon"]["source"]["channel"] == "live_drop"
    lost = bob.emit("claim", {"drop_id": drop["id"]}, namespace="/live", callback=True)
    assert lost["error"]["code"] == "SOLD_OUT"
    heard = [m for m in bob.get_received("/live") if m["name"] != "error"]
    assert [m["name"] for m in heard] == [
        "stream_status",
        "pinned",
        "comment",
        "poll",
        "poll_tallies",
        "drop",
        "drop_sold_out",
    ]
    offsets = [m["args"][0]["offset"] for m in heard]
    assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)
    # A viewer reconnecting with the offset of the comment gets what came after it.
    carol, _ = setup["viewer"]()
    back = carol.emit(
        "join", {"stream_id": sid, "offset": offsets[2]}, namespace="/live", callback=True
    )
    assert back["recovered"] and [e["event"] for e in back["events"]] == [
        "poll",
        "poll_tallies",
        "drop",
        "drop_sold_out",
    ]
    feedback = host.emit("feedback", {}, namespace="/host", callback=True)
    assert feedback["viewers"] == 3 and feedback["poll"]["tallies"] == [0, 1]


def test_bad_input_gets_an_error_ack_and_keeps_the_connection(setup):
    viewer, _ = setup["viewer"]()
    assert (
        viewer.emit("comment", {"text": "x"}, namespace="/live", callback=True)["error"]["code"]
        == "NOT_JOINED"
    )
    viewer.emit("join", {"stream_id": setup["sid"]}, namespace="/live", callback=True)
    for event, payload, code in (
        ("join", {"stream_id": "abc"}, "validation_error"),
        ("join", {"stream_id": "999"}, "stream_not_found"),
        ("claim", {"drop_id": "d1", "extra": 1}, "unknown_field"),
        ("drop", {"offer_id": "o1", "quantity": 1, "window_s": 30}, "unknown_event"),
        ("comment", "not an object", "invalid_payload"),
    ):
        ack = viewer.emit(event, payload, namespace="/live", callback=True)
        assert ack["error"]["code"] == code, (event, ack)
    big = viewer.emit("comment", {"text": "x" * 20_000}, namespace="/live", callback=True)
    assert big["error"]["code"] == "payload_too_large"
    assert viewer.is_connected("/live")


@pytest.mark.parametrize(
    "event, payload, field",
    [
        ("vote", {"poll_id": "POLL", "option": True}, "option"),
        ("vote", {"poll_id": "POLL", "option": "1"}, "option"),
        ("vote", {"poll_id": "POLL", "option": 1.0}, "option"),
        ("like", {"count": True}, "count"),
        ("join", {"stream_id": "SID", "offset": False}, "offset"),
    ],
)
def test_a_boolean_or_a_string_is_not_a_number_in_an_event(setup, event, payload, field):
    host, sid = setup["host"], setup["sid"]
    viewer, _ = setup["viewer"]()
    viewer.emit("join", {"stream_id": sid}, namespace="/live", callback=True)
    host.emit("start", {}, namespace="/host", callback=True)
    poll = host.emit(
        "poll_start",
        {"question": "Colour?", "options": ["red", "blue"], "duration_s": 60},
        namespace="/host",
        callback=True,
    )
    body = {k: {"POLL": poll["id"], "SID": sid}.get(v, v) for k, v in payload.items()}
    ack = viewer.emit(event, body, namespace="/live", callback=True)
    assert ack["error"]["code"] == "validation_error" and ack["error"]["field"] == field, ack
    assert viewer.is_connected("/live")
    # Nothing was counted: the poll's tallies are untouched and a real vote still works.
    voted = viewer.emit(
        "vote", {"poll_id": poll["id"], "option": 1}, namespace="/live", callback=True
    )
    assert voted["tallies"] == [0, 1]


def test_likes_are_summed_once_a_second_and_hosts_get_feedback(app, setup):
    from app.live_ticker import tick

    host, sid = setup["host"], setup["sid"]
    viewer, _ = setup["viewer"]()
    viewer.emit("join", {"stream_id": sid}, namespace="/live", callback=True)
    host.emit("start", {}, namespace="/host", callback=True)
    viewer.get_received("/live")
    host.get_received("/host")
    # Nobody has liked yet: the first tick says nothing (no `likes` of 0 taking an offset).
    assert tick(app, T0 + 7)["likes"] == {}
    for _ in range(7):
        viewer.emit("like", {"count": 3}, namespace="/live", callback=True)
    viewer.emit("comment", {"text": "love this coat"}, namespace="/live", callback=True)
    now = T0 + 10  # an even second: feedback goes out too
    sent = tick(app, now)
    assert sent == {"likes": {sid: 21}, "feedback": [sid]}
    assert tick(app, now) == {"likes": {}, "feedback": []}  # this second is done
    assert tick(app, now + 1)["likes"] == {}  # nothing new to say
    likes = [m["args"][0] for m in viewer.get_received("/live") if m["name"] == "likes"]
    assert [m["total"] for m in likes] == [21]
    [feedback] = [m["args"][0] for m in host.get_received("/host") if m["name"] == "feedback"]
    assert feedback["viewers"] == 1 and feedback["sentiment"]["positive"] == 1
    assert ("coat", 1) in [tuple(w) for w in feedback["top_words"]]


def test_after_the_stream_its_report_and_comments_csv(app, client, setup):
    import csv
    import io

    from .helpers import assert_error, bearer

    host, sid = setup["host"], setup["sid"]
    viewer, viewer_id = setup["viewer"]()
    viewer.emit("join", {"stream_id": sid}, namespace="/live", callback=True)
    host.emit("start", {}, namespace="/host", callback=True)
    for text in ("好看!", "too expensive", "great, 喜欢"):
        assert "comment" in viewer.emit("comment", {"text": text}, namespace="/live", callback=True)
    poll = host.emit(
        "poll_start",
        {"question": "Size?", "options": ["S", "M"], "duration_s": 60},
        namespace="/host",
        callback=True,
    )
    viewer.emit("vote", {"poll_id": poll["id"], "option": 1}, namespace="/live", callback=True)
    token = setup["auth"].user("marketer")["token"]
    assert_error(
        client.get(f"/api/streams/{sid}/report", headers=bearer(token)),
        409,
        "STREAM_NOT_ENDED",
        "stream_id",
    )
    host.emit("end", {}, namespace="/host", callback=True)
    report = client.get(f"/api/streams/{sid}/report", headers=bearer(token)).get_json()
    assert report["comments"]["count"] == 3 and report["stats"]["comments"] == 3
    assert report["polls"][0]["tallies"] == [0, 1]

    def rows(part):
        response = client.get(f"/api/streams/{sid}/report/{part}.csv", headers=bearer(token))
        assert response.mimetype == "text/csv"
        return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))

    comments = rows("comments")
    assert [r["text"] for r in comments] == ["好看!", "too expensive", "great, 喜欢"]
    assert {r["viewer_id"] for r in comments} == {viewer_id}
    assert [(r["option"], r["votes"]) for r in rows("polls")] == [("S", "0"), ("M", "1")]
    stats = {r["name"]: r["value"] for r in rows("stats")}
    assert stats["comments"] == "3"
    assert rows("drops") == [] and rows("questions") == []
    assert_error(
        client.get(f"/api/streams/{sid}/report/nope.csv", headers=bearer(token)),
        422,
        "validation_error",
        "part",
    )


def test_guests_watch_but_do_not_write(app, client, setup):
    response = client.post("/api/auth/guest")
    assert response.status_code == 201
    guest = response.get_json()
    assert guest["user"]["role"] == "guest" and guest["user"]["email"] == ""
    sock = setup["connect"]("/live", guest["token"])
    assert sock.is_connected("/live")
    setup["host"].emit("start", {}, namespace="/host", callback=True)
    joined = sock.emit("join", {"stream_id": setup["sid"]}, namespace="/live", callback=True)
    assert joined["state"]["stream"]["status"] == "live"
    for event, payload in (("comment", {"text": "hi"}), ("like", {}), ("claim", {"drop_id": "d1"})):
        ack = sock.emit(event, payload, namespace="/live", callback=True)
        assert ack["error"]["code"] == "forbidden_role", (event, ack)
    assert sock.is_connected("/live")
    # A guest is nobody elsewhere: every other endpoint refuses it.
    from .helpers import assert_error, bearer

    assert_error(client.get("/api/wallet", headers=bearer(guest["token"])), 403, "forbidden_role")


def test_every_report_csv_defuses_formulas_typed_by_viewers_and_staff(app, client, setup):
    """Comments, questions, polls and drops carry text from viewers, hosts and marketers."""
    import csv
    import io

    from promotions.models import OfferPatch

    from .helpers import bearer

    promos = app.extensions["promotions"]
    cid = setup["stream"]["campaign_id"]
    promos.campaigns.update_offer(cid, setup["oid"], OfferPatch(name="=cmd|' /C calc'!A0"))
    host, sid = setup["host"], setup["sid"]
    viewer, _ = setup["viewer"]()
    viewer.emit("join", {"stream_id": sid}, namespace="/live", callback=True)
    host.emit("start", {}, namespace="/host", callback=True)
    typed = ['=HYPERLINK("http://evil.example","prize")', "@SUM(1+1)", "+1+1", "-2+3"]
    for text in typed:
        assert "comment" in viewer.emit("comment", {"text": text}, namespace="/live", callback=True)
    viewer.emit("ask", {"text": "=1+1"}, namespace="/live", callback=True)
    host.emit(
        "poll_start",
        {"question": "@who", "options": ["+a", "-b"], "duration_s": 60},
        namespace="/host",
        callback=True,
    )
    drop = host.emit(
        "drop",
        {"offer_id": setup["oid"], "quantity": 1, "window_s": 30},
        namespace="/host",
        callback=True,
    )
    assert (
        viewer.emit("claim", {"drop_id": drop["id"]}, namespace="/live", callback=True)["outcome"]
        == "won"
    )
    host.emit("end", {}, namespace="/host", callback=True)
    token = setup["auth"].user("marketer")["token"]

    def rows(part):
        response = client.get(f"/api/streams/{sid}/report/{part}.csv", headers=bearer(token))
        assert response.status_code == 200
        return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))

    assert [r["text"] for r in rows("comments")] == ["'" + t for t in typed]
    [question] = rows("questions")
    assert question["text"] == "'=1+1" and question["upvotes"] == "0"
    polls = rows("polls")
    assert {r["question"] for r in polls} == {"'@who"}
    assert [r["option"] for r in polls] == ["'+a", "'-b"]
    [dropped] = rows("drops")
    assert dropped["title"] == "'=cmd|' /C calc'!A0" and dropped["claimed"] == "1"
    # Numbers the server wrote stay numbers: times, counts.
    assert float(rows("comments")[0]["at"]) > 0
    assert {r["name"]: r["value"] for r in rows("stats")}["comments"] == "4"


def test_a_host_taken_off_the_stream_loses_the_console(app, client, setup):
    from live.models import StreamPatch
    from live.streams import Caller

    sid, auth = setup["sid"], setup["auth"]
    marketer, _ = auth.headers("marketer")
    first_id = setup["stream"]["hosts"][0]
    second = auth.user("host")
    both = [first_id, second["user"]["id"]]
    assert (
        client.patch(f"/api/streams/{sid}", headers=marketer, json={"hosts": both}).status_code
        == 200
    )
    console = setup["connect"]("/host", second["token"], stream_id=sid)
    assert console.is_connected("/host")
    assert "text" in console.emit("announce", {"text": "hello"}, namespace="/host", callback=True)
    # Taken off behind the console's back (no disconnect): every host event checks the hosts.
    app.extensions["streams"].update(sid, StreamPatch(hosts=[first_id]), Caller("m", "marketer"))
    for event, payload in (
        ("announce", {"text": "still here"}),
        ("banned_words", {"words": ["x"]}),
        ("slow_mode", {"seconds": 30}),
        ("mute", {"viewer_id": "v1", "seconds": 60}),
        ("ban", {"viewer_id": "v1"}),
        ("pin", {"product_id": setup["pid"]}),
        ("poll_start", {"question": "q", "options": ["a", "b"], "duration_s": 60}),
        ("drop", {"offer_id": setup["oid"], "quantity": 1, "window_s": 30}),
        ("delete_comment", {"comment_id": "c1"}),
        ("feedback", {}),
        ("start", {}),
    ):
        ack = console.emit(event, payload, namespace="/host", callback=True)
        assert ack["error"]["code"] == "not_your_stream", (event, ack)
    moderation = app.extensions["live"].chat.moderation_state(sid)
    assert moderation["banned"] == [] and moderation["muted"] == []
    assert moderation["banned_words"] == [] and moderation["slow_mode_s"] == 0
    # Taken off over REST (the stream may be live): the console is disconnected.
    assert setup["host"].emit("start", {}, namespace="/host", callback=True) == {"status": "live"}
    assert (
        client.patch(f"/api/streams/{sid}", headers=marketer, json={"hosts": both}).status_code
        == 200
    )
    console = setup["connect"]("/host", second["token"], stream_id=sid)
    assert console.is_connected("/host")
    response = client.patch(f"/api/streams/{sid}", headers=marketer, json={"hosts": [first_id]})
    assert response.status_code == 200 and response.get_json()["hosts"] == [first_id]
    assert not console.is_connected("/host")
    assert setup["host"].is_connected("/host")  # the remaining host keeps theirs
    assert (
        setup["host"].emit("announce", {"text": "on"}, namespace="/host", callback=True)["text"]
        == "on"
    )
    # A live stream changes only its hosts.
    late = client.patch(f"/api/streams/{sid}", headers=marketer, json={"title": "late"})
    assert late.status_code == 409 and late.get_json()["error"]["code"] == "STREAM_NOT_SCHEDULED"


def heard(sock, ns):
    """What a client heard so far, as (name, payload) pairs, `error` events left out."""
    return [(m["name"], m["args"][0]) for m in sock.get_received(ns) if m["name"] != "error"]


def test_a_rehearsal_reaches_only_the_consoles_and_the_show_opens_with_its_stage(app, setup):
    host, sid, pid = setup["host"], setup["sid"], setup["pid"]
    other = setup["connect"]("/host", setup["host_token"], stream_id=sid)
    alice, _ = setup["viewer"]()
    joined = alice.emit("join", {"stream_id": sid}, namespace="/live", callback=True)
    before = joined["state"]["offset"]
    other.get_received("/host")
    # Rehearsal: every move works and is heard by the other console, never by a viewer.
    host.emit("pin", {"product_id": pid}, namespace="/host", callback=True)
    host.emit("sold_out", {"product_id": pid, "sold_out": True}, namespace="/host", callback=True)
    host.emit("announce", {"text": "doors open"}, namespace="/host", callback=True)
    poll = host.emit(
        "poll_start",
        {"question": "Colour?", "options": ["red", "blue"], "duration_s": 600},
        namespace="/host",
        callback=True,
    )
    host.emit("slow_mode", {"seconds": 30}, namespace="/host", callback=True)
    rehearsed = heard(other, "/host")
    assert [name for name, _ in rehearsed] == [
        "pinned",
        "product",
        "pinned",
        "announcement",
        "poll",
        "slow_mode",
    ]
    assert all(data["rehearsal"] is True and "offset" not in data for _, data in rehearsed)
    assert heard(alice, "/live") == []
    # Nothing went into the viewers' history; a viewer joining now sees no rehearsal stage.
    live = app.extensions["live"]
    assert live.history.offset(sid) == before
    bob, _ = setup["viewer"]()
    state = bob.emit("join", {"stream_id": sid}, namespace="/live", callback=True)["state"]
    assert state["pinned"] == [] and state["announcement"] is None and state["poll"] is None
    assert state["slow_mode_s"] == 0 and state["offset"] == before
    back = bob.emit("join", {"stream_id": sid, "offset": before}, namespace="/live", callback=True)
    assert back == {"recovered": True, "offset": before, "events": []}
    # The console's state has the rehearsal's stage.
    console = host.emit("state", None, namespace="/host", callback=True)
    assert [p["id"] for p in console["pinned"]] == [pid] and console["slow_mode_s"] == 30
    assert console["pinned"][0]["sold_out"] is True
    # Going live: viewers hear the status, then the stage as set, each with its offset.
    assert host.emit("start", {}, namespace="/host", callback=True) == {"status": "live"}
    opened = heard(alice, "/live")
    assert [name for name, _ in opened] == [
        "stream_status",
        "pinned",
        "announcement",
        "poll",
        "slow_mode",
    ]
    status, pinned, announcement, opened_poll, slow = (data for _, data in opened)
    assert status["status"] == "live"
    assert [(p["id"], p["sold_out"]) for p in pinned["products"]] == [(pid, True)]
    assert announcement["text"] == "doors open"
    assert opened_poll["id"] == poll["id"] and opened_poll["open"] is True
    assert slow["seconds"] == 30
    offsets = [data["offset"] for _, data in opened]
    assert offsets == list(range(before + 1, before + 6))
    # A viewer who joined during the rehearsal recovers exactly these from its offset.
    carol, _ = setup["viewer"]()
    again = carol.emit(
        "join", {"stream_id": sid, "offset": before}, namespace="/live", callback=True
    )
    assert [(e["event"], e["offset"]) for e in again["events"]] == [
        (name, data["offset"]) for name, data in opened
    ]
    # A retried start changes nothing and tells nobody again.
    assert host.emit("start", {}, namespace="/host", callback=True) == {"status": "live"}
    assert heard(alice, "/live") == [] and live.history.offset(sid) == offsets[-1]
    # Live now: a move reaches viewers at once.
    host.emit("unpin", {"product_id": pid}, namespace="/host", callback=True)
    [(name, data)] = heard(alice, "/live")
    assert name == "pinned" and data["products"] == [] and "rehearsal" not in data


def test_going_live_over_rest_also_opens_the_show(client, setup):
    host, sid, pid = setup["host"], setup["sid"], setup["pid"]
    viewer, _ = setup["viewer"]()
    viewer.emit("join", {"stream_id": sid}, namespace="/live", callback=True)
    host.emit("pin", {"product_id": pid}, namespace="/host", callback=True)
    assert heard(viewer, "/live") == []
    marketer, _ = setup["auth"].headers("marketer")
    moved = client.post(f"/api/streams/{sid}/transition", headers=marketer, json={"to": "live"})
    assert moved.status_code == 200 and moved.get_json()["status"] == "live"
    opened = heard(viewer, "/live")
    assert [name for name, _ in opened] == ["stream_status", "pinned"]
    assert opened[1][1]["products"][0]["id"] == pid
    again = client.post(f"/api/streams/{sid}/transition", headers=marketer, json={"to": "live"})
    assert again.status_code == 200 and heard(viewer, "/live") == []
    client.post(f"/api/streams/{sid}/transition", headers=marketer, json={"to": "ended"})
    [(name, data)] = heard(viewer, "/live")
    assert name == "stream_status" and data["status"] == "ended"


def test_a_host_marks_a_product_sold_out_and_back_in_stock(client, setup):
    host, sid, pid = setup["host"], setup["sid"], setup["pid"]
    marketer, _ = setup["auth"].headers("marketer")
    other = client.post(
        f"/api/streams/{sid}/products", headers=marketer, json={"name": "hat", "price_fen": 50}
    ).get_json()
    viewer, _ = setup["viewer"]()
    viewer.emit("join", {"stream_id": sid}, namespace="/live", callback=True)
    host.emit("start", {}, namespace="/host", callback=True)
    host.emit("pin", {"product_id": pid}, namespace="/host", callback=True)
    heard(viewer, "/live")
    ack = host.emit(
        "sold_out", {"product_id": pid, "sold_out": True}, namespace="/host", callback=True
    )
    assert ack["product"]["id"] == pid and ack["product"]["sold_out"] is True
    assert [p["sold_out"] for p in ack["pinned"]] == [True]
    (n1, product), (n2, pinned) = heard(viewer, "/live")
    assert (n1, n2) == ("product", "pinned")
    assert product["id"] == pid and product["sold_out"] is True and product["offset"] > 0
    assert pinned["products"][0]["sold_out"] is True and pinned["offset"] > product["offset"]
    # An unpinned product: only `product` (pinned lists do not change).
    host.emit(
        "sold_out", {"product_id": other["id"], "sold_out": True}, namespace="/host", callback=True
    )
    [(name, data)] = heard(viewer, "/live")
    assert name == "product" and data["id"] == other["id"]
    # A late joiner and the REST API see the marks.
    late, _ = setup["viewer"]()
    state = late.emit("join", {"stream_id": sid}, namespace="/live", callback=True)["state"]
    assert {p["id"]: p["sold_out"] for p in state["products"]} == {pid: True, other["id"]: True}
    assert state["pinned"][0]["sold_out"] is True
    products = client.get(f"/api/streams/{sid}", headers=marketer).get_json()["products"]
    assert {p["id"]: p["sold_out"] for p in products} == {pid: True, other["id"]: True}
    # Back in stock.
    back = host.emit(
        "sold_out", {"product_id": pid, "sold_out": False}, namespace="/host", callback=True
    )
    assert back["product"]["sold_out"] is False
    assert [name for name, _ in heard(viewer, "/live")] == ["product", "pinned"]
    products = client.get(f"/api/streams/{sid}").get_json()["products"]
    assert {p["id"]: p["sold_out"] for p in products} == {pid: False, other["id"]: True}
    # Refusals: the envelope as the ack, the connection stays.
    for payload, code, field in (
        ({"product_id": "p999", "sold_out": True}, "PRODUCT_NOT_FOUND", "product_id"),
        ({"product_id": pid, "sold_out": "yes"}, "validation_error", "sold_out"),
        ({"product_id": pid, "sold_out": 1}, "validation_error", "sold_out"),
        ({"product_id": pid}, "validation_error", "sold_out"),
        ({"product_id": "x1", "sold_out": True}, "validation_error", "product_id"),
        ({"product_id": pid, "sold_out": True, "more": 1}, "unknown_field", "more"),
    ):
        ack = host.emit("sold_out", payload, namespace="/host", callback=True)
        assert (ack["error"]["code"], ack["error"]["field"]) == (code, field), (payload, ack)
    assert host.emit("sold_out", [1], namespace="/host", callback=True)["error"]["code"] == (
        "invalid_payload"
    )
    assert host.is_connected("/host")
    refused = viewer.emit(
        "sold_out", {"product_id": pid, "sold_out": True}, namespace="/live", callback=True
    )
    assert refused["error"]["code"] == "unknown_event" and viewer.is_connected("/live")


def test_an_admin_watches_any_console_read_only(client, setup):
    host, sid, pid = setup["host"], setup["sid"], setup["pid"]
    admin = setup["auth"].user("admin")
    watcher = setup["connect"]("/host", admin["token"], stream_id=sid)
    assert watcher.is_connected("/host")
    assert not setup["connect"]("/host", admin["token"], stream_id="999").is_connected("/host")
    state = watcher.emit("state", None, namespace="/host", callback=True)
    assert state["stream"]["id"] == sid and "banned_words" in state
    host.emit("pin", {"product_id": pid}, namespace="/host", callback=True)
    [(name, data)] = heard(watcher, "/host")
    assert name == "pinned" and data["rehearsal"] is True
    host.emit("start", {}, namespace="/host", callback=True)
    viewer, _ = setup["viewer"]()
    viewer.emit("join", {"stream_id": sid}, namespace="/live", callback=True)
    viewer.emit("comment", {"text": "hello"}, namespace="/live", callback=True)
    names_heard = [name for name, _ in heard(watcher, "/host")]
    assert names_heard == ["stream_status", "pinned", "comment"]
    assert watcher.emit("feedback", {}, namespace="/host", callback=True)["viewers"] == 1
    for event, payload in (
        ("pin", {"product_id": pid}),
        ("unpin", {"product_id": pid}),
        ("sold_out", {"product_id": pid, "sold_out": True}),
        ("announce", {"text": "admin here"}),
        ("poll_start", {"question": "q", "options": ["a", "b"], "duration_s": 60}),
        ("drop", {"offer_id": setup["oid"], "quantity": 1, "window_s": 30}),
        ("delete_comment", {"comment_id": "c1"}),
        ("slow_mode", {"seconds": 30}),
        ("banned_words", {"words": ["x"]}),
        ("ban", {"viewer_id": "v1"}),
        ("end", {}),
    ):
        ack = watcher.emit(event, payload, namespace="/host", callback=True)
        assert ack["error"]["code"] == "forbidden_role", (event, ack)
    assert watcher.is_connected("/host")
    assert [name for name, _ in heard(viewer, "/live")] == ["comment"]  # nothing refused
    live = host.emit("state", None, namespace="/host", callback=True)
    assert live["stream"]["status"] == "live" and live["announcement"] is None
    assert [p["sold_out"] for p in live["pinned"]] == [False]
    # A change of hosts closes the consoles of hosts taken off, not an admin's.
    marketer, _ = setup["auth"].headers("marketer")
    response = client.patch(
        f"/api/streams/{sid}", headers=marketer, json={"hosts": setup["stream"]["hosts"]}
    )
    assert response.status_code == 200 and watcher.is_connected("/host")
