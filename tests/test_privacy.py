"""Privacy sweep: a shopper plays everything, withdraws consent, then erases the account.

After the withdrawal, a SCAN of every key of every type finds no coordinate of theirs (as text
at several precisions, as geohash cells, or as a GEO member's position); after the erasure,
nothing personal remains beyond what README "Privacy" lists as kept.
"""

from __future__ import annotations

import json

import pytest

from game import cells
from geo.geometry import fast_distance_m

from .conftest import T0
from .game_helpers import SHANGHAI, offset, outcome_of
from .test_game_api import GameApi

PASSWORD = "correct-horse-1"


def dump_everything(r) -> tuple[list[tuple[str, str, str]], list[tuple[str, float, float]]]:
    """Return (key, type, text of the value) for every key, and every GEO-decodable member's
    (key|member, lat, lon) of every sorted set."""
    rows, positions = [], []
    for key in r.scan_iter(count=1000):
        kind = r.type(key)
        if kind == "string":
            value = r.get(key)
        elif kind == "hash":
            value = r.hgetall(key)
        elif kind == "list":
            value = r.lrange(key, 0, -1)
        elif kind == "set":
            value = sorted(r.smembers(key))
        elif kind == "zset":
            members = r.zrange(key, 0, -1, withscores=True)
            value = members
            names = [m for m, _ in members]
            for name, pos in zip(names, r.geopos(key, *names) if names else [], strict=True):
                if pos is not None:
                    positions.append((f"{key}|{name}", pos[1], pos[0]))
        elif kind == "stream":
            value = r.xrange(key)
        else:  # HyperLogLogs are strings; nothing else is used
            raise AssertionError(f"unexpected type {kind} of {key}")
        rows.append((key, kind, json.dumps(value, ensure_ascii=False, default=str)))
    return rows, positions


def coordinate_texts(points: list[tuple[float, float]]) -> set[str]:
    """The ways a stored coordinate could spell one of the points."""
    texts = set()
    for lat, lon in points:
        for value in (lat, lon):
            texts.add(repr(value))
            for digits in (4, 5, 6, 7):
                texts.add(f"{value:.{digits}f}")
        texts.add(cells.encode(lat, lon))  # geohash-7, as in a wild spawn's id
        texts.add(cells.encode(lat, lon)[:6])
    return texts


class Shopper:
    """One shopper playing every part of Footfall in process, recording where they were."""

    def __init__(self, app, client, auth, api: GameApi, clock):
        self.app, self.client, self.auth, self.api, self.clock = app, client, auth, api, clock
        self.email = "privacy-subject@example.test"
        session = auth.signup(self.email, PASSWORD)
        self.id = session["user"]["id"]
        self.token = session["token"]
        self.headers = {"Authorization": f"Bearer {self.token}"}
        self.points: list[tuple[float, float]] = []
        self.spawn_ids: list[str] = []

    def consent(self, granted: bool) -> None:
        response = self.client.put(
            "/api/me/consent", json={"location": granted}, headers=self.headers
        )
        assert response.status_code == 200, response.get_json()

    def walk_in(self) -> None:
        """Buffered fixes walking into the store's fence, then a fresh one inside it."""
        path = [offset(*SHANGHAI, 300 - 50 * i, 37 + i) for i in range(6)]
        fixes = [
            {"lat": lat, "lon": lon, "accuracy_m": 6, "recorded_at": T0 - 300 + 50 * i}
            for i, (lat, lon) in enumerate(path)
        ]
        response = self.client.post(
            "/api/location/fixes", json={"fixes": fixes}, headers=self.headers
        )
        assert response.status_code == 200, response.get_json()
        kinds = [e["kind"] for r in response.get_json()["results"] for e in r["events"]]
        assert "enter" in kinds
        self.points += path

    def throw(self, view: dict, **fix) -> dict:
        self.clock.advance(11)  # the cooldown between throws
        body = {
            "spawn_id": view["id"],
            "fix": {
                "lat": view["lat"],
                "lon": view["lon"],
                "accuracy_m": 5,
                "recorded_at": self.clock.now(),
                "speed_mps": 0,
                **fix,
            },
        }
        self.points.append((view["lat"], view["lon"]))
        self.spawn_ids.append(view["id"])
        return self.client.post("/api/game/catches", json=body, headers=self.headers)

    def play_the_game(self) -> str:
        """Catch a store creature (a coupon) and a wild one; get struck once; return the
        coupon id."""
        game = self.app.extensions["game"]
        views = self.api.spawns(self.headers, limit=100)
        catchable = [
            v
            for v in views
            if v["distance_m"] <= 60 and outcome_of(game.spawn(v["id"]), self.id) == "caught"
        ]
        store = next(v for v in catchable if v["store_id"])
        wild = next(v for v in catchable if not v["store_id"])
        caught = self.throw(store).get_json()
        assert caught["outcome"] == "caught" and caught["coupon"], caught
        assert self.throw(wild).get_json()["outcome"] == "caught"
        other = next(v for v in views if v["id"] not in self.spawn_ids and v["distance_m"] < 60)
        assert self.throw(other, mock=True).status_code == 422  # a strike, with evidence
        assert game.strikes(self.id)["strikes"] == 1
        return caught["coupon"]["id"]

    def redeem(self, coupon_id: str) -> None:
        token = self.client.get(f"/api/wallet/{coupon_id}", headers=self.headers).get_json()[
            "token"
        ]
        till, _ = self.auth.headers("staff", store_id="acme-1")
        response = self.client.post(
            "/api/redemptions",
            headers=till,
            json={"code": token, "basket_fen": 12_000, "order_ref": "P-1"},
        )
        assert response.status_code == 201, response.get_json()

    def join_a_club(self) -> str:
        marketer = self.api.marketer
        assert (
            self.client.post(
                "/api/membership-programs",
                headers=marketer,
                json={"id": "acme-club", "name": "Acme Club", "number_pattern": "^AC[0-9]{6}$"},
            ).status_code
            == 201
        )
        number = "AC314159"
        response = self.client.put(
            "/api/me/memberships/acme-club", headers=self.headers, json={"member_number": number}
        )
        assert response.status_code == 200, response.get_json()
        return number

    def watch_a_stream(self) -> list[str]:
        """Comment, like, vote, ask, upvote and win a drop; return the texts they wrote."""
        api, client = self.api, self.client
        drop_offer = api.offer(["live_drop"])
        host = self.auth.user("host")
        stream = client.post(
            "/api/streams",
            headers=api.marketer,
            json={
                "title": "t",
                "brand": "Acme",
                "playback_url": "https://v.example/x",
                "hosts": [host["user"]["id"]],
                "starts_at": T0,
                "campaign_id": api.cid,
            },
        ).get_json()
        socketio = self.app.extensions["socketio"]

        def connect(namespace, token, **extra):
            return socketio.test_client(
                self.app,
                namespace=namespace,
                auth={"token": token, **extra},
                flask_test_client=client,
            )

        console = connect("/host", host["token"], stream_id=stream["id"])
        me = connect("/live", self.token)
        neighbour_headers, _ = self.auth.headers("shopper")
        neighbour = connect("/live", neighbour_headers["Authorization"][7:])
        for sock in (me, neighbour):
            sock.emit("join", {"stream_id": stream["id"]}, namespace="/live", callback=True)
        assert console.emit("start", {}, namespace="/host", callback=True) == {"status": "live"}
        texts = ["my very own remark 7c1f", "which size fits me 9d2e"]
        assert "comment" in me.emit("comment", {"text": texts[0]}, namespace="/live", callback=True)
        console.emit("pin_comment", {"comment_id": "c1"}, namespace="/host", callback=True)
        me.emit("like", {"count": 3}, namespace="/live", callback=True)
        poll = console.emit(
            "poll_start",
            {"question": "Colour?", "options": ["red", "blue"], "duration_s": 60},
            namespace="/host",
            callback=True,
        )
        assert "tallies" in me.emit(
            "vote", {"poll_id": poll["id"], "option": 1}, namespace="/live", callback=True
        )
        asked = me.emit("ask", {"text": texts[1]}, namespace="/live", callback=True)
        theirs = neighbour.emit(
            "ask", {"text": "a neighbour's question"}, namespace="/live", callback=True
        )
        assert "question" in asked and "question" in theirs
        me.emit(
            "upvote", {"question_id": theirs["question"]["id"]}, namespace="/live", callback=True
        )
        neighbour.emit(
            "upvote", {"question_id": asked["question"]["id"]}, namespace="/live", callback=True
        )
        drop = console.emit(
            "drop",
            {"offer_id": drop_offer, "quantity": 1, "window_s": 30},
            namespace="/host",
            callback=True,
        )
        won = me.emit("claim", {"drop_id": drop["id"]}, namespace="/live", callback=True)
        assert won["outcome"] == "won", won
        for sock in (me, neighbour, console):
            sock.disconnect(namespace="/live" if sock is not console else "/host")
        return texts


@pytest.fixture
def played(app, client, auth, clock):
    api = GameApi(app, client, auth)
    shopper = Shopper(app, client, auth, api, clock)
    shopper.consent(True)
    shopper.walk_in()
    coupon_id = shopper.play_the_game()
    shopper.redeem(coupon_id)
    number = shopper.join_a_club()
    texts = shopper.watch_a_stream()
    return shopper, number, texts


def test_withdrawing_consent_leaves_no_coordinate_anywhere(app, played):
    shopper, _, _ = played
    r = app.extensions["redis"]
    points = shopper.points
    rows, positions = dump_everything(r)
    texts = coordinate_texts(points)
    before = [
        (key, text) for key, _, value in rows for text in texts if text in key or text in value
    ]
    assert before, "the sweep must see the shopper's coordinates while they play"

    shopper.consent(False)
    rows, positions = dump_everything(r)
    kinds = {kind for _, kind, _ in rows}
    assert {"string", "hash", "list", "set", "zset", "stream"} <= kinds  # every type swept
    found = [
        (key, text) for key, _, value in rows for text in texts if text in key or text in value
    ]
    assert found == []
    for spawn_id in shopper.spawn_ids:  # a spawn id names its map cell or its store
        assert not [key for key, _, value in rows if spawn_id in value or spawn_id in key]
    near = [
        (where, lat, lon)
        for where, lat, lon in positions
        for p in points
        if fast_distance_m(lat, lon, *p) < 5.0
    ]
    assert near == []


# What README "Privacy" says stays after an erasure, under the opaque id only: the coupons
# and their ledger (financial records, with the per-shopper issue counts that enforce caps),
# geofence events, a drop's winners (one coupon per viewer), and for at most three hours the
# game's reward-once record of a catch.
KEPT = (
    ":coupons",
    ":state",
    ":ledger",
    ":ps",
    ":psd:",
    ":idem",
    "geo:events",
    ":winners",
    ":rewarded:",
)


def test_erasure_leaves_nothing_personal_beyond_the_financial_records(app, client, played):
    shopper, number, texts = played
    r = app.extensions["redis"]
    shopper.consent(False)
    response = client.delete("/api/me", headers=shopper.headers)
    assert response.status_code == 200, response.get_json()
    rows, _ = dump_everything(r)
    personal = [shopper.email, shopper.email.split("@")[0], number, *texts]
    leaks = [(key, p) for key, _, value in rows for p in personal if p in value or p in key]
    assert leaks == []
    linked = sorted({key for key, _, value in rows if shopper.id in value or shopper.id in key})
    assert linked, "the financial records keep the opaque id"
    assert [key for key in linked if not any(part in key for part in KEPT)] == []
    # What is kept names no person: the account and its email index are gone.
    assert client.get("/api/me", headers=shopper.headers).status_code == 401
