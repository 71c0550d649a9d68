"""The game's REST API and socket events in process: configuration, spawns, catches, status,
collection, leaderboards, sprites, strikes, roll audits and erasure."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from game import keys, roll_for

from .conftest import T0
from .game_helpers import SHANGHAI, SPECIES, offset, outcome_of
from .helpers import assert_error

GAME = {
    "species": SPECIES,
    "density_per_cell": 20,
    "store_density": 20,
    "store_rarity_boost": 5,
    "seed": "api-seed",
}


class GameApi:
    """A marketer with a store, a live campaign, a game offer and a game, over HTTP."""

    def __init__(self, app, client, auth):
        self.app = app
        self.client = client
        self.auth = auth
        self.marketer, _ = auth.headers("marketer")
        store = {
            "id": "acme-1",
            "name": "Acme 1",
            "brand": "Acme",
            "city": "Shanghai",
            "lat": SHANGHAI[0],
            "lon": SHANGHAI[1],
            "fence": {"type": "circle", "radius_m": 80},
        }
        assert client.post("/api/stores", json=store, headers=self.marketer).status_code == 201
        response = client.post(
            "/api/campaigns",
            headers=self.marketer,
            json={
                "name": "Double 11",
                "starts_at": "2026-05-28T00:00:00+08:00",
                "ends_at": T0 + 30 * 86_400,
                "targets": {"brands": ["Acme"]},
            },
        )
        self.cid = response.get_json()["id"]
        self.oid = self.offer(["manual", "game"])
        self.manual_oid = self.offer(["manual"])
        response = client.post(
            f"/api/campaigns/{self.cid}/transition", json={"to": "scheduled"}, headers=self.marketer
        )
        assert response.get_json()["status"] == "live"
        response = self.put({**GAME, "offer_id": self.oid})
        assert response.status_code == 200, response.get_json()

    def offer(self, channels):
        response = self.client.post(
            f"/api/campaigns/{self.cid}/offers",
            headers=self.marketer,
            json={
                "name": "20 off",
                "kind": "amount_off",
                "amount_off_fen": 2000,
                "channels": channels,
            },
        )
        assert response.status_code == 201, response.get_json()
        return response.get_json()["id"]

    def put(self, body, cid=None):
        return self.client.put(
            f"/api/campaigns/{cid or self.cid}/game", json=body, headers=self.marketer
        )

    def shopper(self, at=SHANGHAI):
        """Sign a shopper up (with consent) and record a fix at a point."""
        headers, user = self.auth.headers("shopper")
        if at is not None:
            self.fix(headers, *at)
        return headers, user["id"]

    def fix(self, headers, lat, lon, **extra):
        body = {"lat": lat, "lon": lon, "accuracy_m": 5, "recorded_at": T0, **extra}
        response = self.client.post("/api/location/fix", json=body, headers=headers)
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def spawns(self, headers, **query):
        response = self.client.get("/api/game/spawns", query_string=query, headers=headers)
        assert response.status_code == 200, response.get_json()
        return response.get_json()["spawns"]

    def throw(self, headers, view, **fix):
        """Throw at a listed spawn from a fix right on it."""
        body = {
            "spawn_id": view["id"],
            "fix": {
                "lat": view["lat"],
                "lon": view["lon"],
                "accuracy_m": 5,
                "recorded_at": T0,
                "speed_mps": 0,
                **fix,
            },
        }
        return self.client.post("/api/game/catches", json=body, headers=headers)

    def catchable(self, headers, shopper_id, *, store=None, within=60.0):
        """Return listed spawns that the shopper's first throw catches."""
        game = self.app.extensions["game"]
        return [
            v
            for v in self.spawns(headers)
            if v["distance_m"] <= within
            and (store is None or bool(v["store_id"]) == store)
            and outcome_of(game.spawn(v["id"]), shopper_id) == "caught"
        ]


@pytest.fixture
def api(app, client, auth):
    return GameApi(app, client, auth)


def test_put_and_get_a_game(client, auth, api):
    got = client.get(f"/api/campaigns/{api.cid}/game", headers=api.marketer)
    assert got.status_code == 200
    doc = got.get_json()
    assert doc["campaign_id"] == api.cid and doc["offer_id"] == api.oid
    assert doc["seed"] == "api-seed" and doc["updated_at"] == T0
    assert [s["id"] for s in doc["species"]] == [s["id"] for s in SPECIES]
    shopper, _ = auth.headers("shopper")
    assert_error(
        client.get(f"/api/campaigns/{api.cid}/game", headers=shopper), 403, "forbidden_role"
    )
    assert_error(api.put(GAME, cid="999"), 404, "campaign_not_found", "campaign_id")
    other = client.post(
        "/api/campaigns",
        headers=api.marketer,
        json={"name": "No game", "starts_at": T0, "ends_at": T0 + 86_400},
    ).get_json()["id"]
    assert_error(
        client.get(f"/api/campaigns/{other}/game", headers=api.marketer),
        404,
        "game_not_found",
        "campaign_id",
    )
    # Without a seed the server picks one.
    body = {k: v for k, v in GAME.items() if k != "seed"}
    assert len(api.put(body, cid=other).get_json()["seed"]) == 16


def _species(**changes):
    return [{**SPECIES[0], **changes}, *SPECIES[1:]]


@pytest.mark.parametrize(
    ("change", "status", "code", "field"),
    [
        ({"species": [SPECIES[0], SPECIES[0]]}, 422, "validation_error", "species"),
        ({"species": _species(rarity="mythic")}, 422, "validation_error", "species[0].rarity"),
        ({"species": _species(id="Big Dumpling")}, 422, "validation_error", "species[0].id"),
        ({"species": _species(weight=0)}, 422, "validation_error", "species[0].weight"),
        ({"species": []}, 422, "validation_error", "species"),
        ({"species": [SPECIES[4]]}, 422, "validation_error", "body"),  # legendary only
        ({"density_per_cell": 21}, 422, "validation_error", "density_per_cell"),
        ({"store_rarity_boost": 0.5}, 422, "validation_error", "store_rarity_boost"),
        ({"colour": "red"}, 422, "unknown_field", "colour"),
        ({"offer_id": "manual"}, 422, "offer_not_for_game", "offer_id"),
        ({"offer_id": "o999"}, 404, "offer_not_found", "offer_id"),
    ],
)
def test_bad_games_are_refused_with_the_field(api, change, status, code, field):
    if change.get("offer_id") == "manual":
        change = {"offer_id": api.manual_oid}
    assert_error(api.put({**GAME, **change}), status, code, field)


def test_spawns_need_a_position_then_list_sprites(client, api):
    headers, _ = api.shopper(at=None)
    error = assert_error(client.get("/api/game/spawns", headers=headers), 409, "NO_POSITION")
    assert "fix" in error["message"]
    api.fix(headers, *SHANGHAI)
    answer = client.get("/api/game/spawns", headers=headers).get_json()
    spawns = answer["spawns"]
    assert answer["count"] > 50 and len(spawns) == 50  # the nearest 50 by default
    assert len(api.spawns(headers, limit=100)) == min(answer["count"], 100)
    assert [s["distance_m"] for s in spawns] == sorted(s["distance_m"] for s in spawns)
    for spawn in spawns:
        assert spawn["sprite_url"] == f"/api/game/sprites/{api.cid}/{spawn['species']}.png"
        assert spawn["distance_m"] <= 200 and spawn["expires_at"] > T0
        assert set(spawn["ar"]) == {"anchor_size_m", "suggested_scale"}
    near = api.spawns(headers, radius_m=50)
    assert near and max(s["distance_m"] for s in near) <= 50
    assert_error(
        client.get("/api/game/spawns?radius_m=501", headers=headers),
        422,
        "validation_error",
        "radius_m",
    )
    marketer = client.get("/api/game/spawns", headers=api.marketer)
    assert_error(marketer, 403, "forbidden_role")


def test_catches_over_http(app, client, api):
    headers, shopper_id = api.shopper()
    view = api.catchable(headers, shopper_id, store=True)[0]
    response = api.throw(headers, view)
    assert response.status_code == 200, response.get_json()
    result = response.get_json()
    assert result["outcome"] == "caught" and result["attempt"] == 1
    assert result["roll"] == round(roll_for(view["id"], shopper_id, 1)[0], 6)
    assert result["spawn"]["sprite_url"] == view["sprite_url"]
    assert result["coupon"]["source"]["channel"] == "game"
    assert result["total_points"] == view["points"]
    wallet = client.get("/api/wallet", headers=headers).get_json()["items"]
    assert [c["id"] for c in wallet] == [result["coupon"]["id"]]

    assert_error(api.throw(headers, view), 409, "ALREADY_CAUGHT", "spawn_id")
    other = next(v for v in api.spawns(headers) if v["id"] != view["id"] and v["distance_m"] < 60)
    error = assert_error(api.throw(headers, other), 409, "COOLDOWN")
    assert error["details"] == {"until": T0 + 10}
    assert_error(
        api.throw(headers, other, recorded_at=T0 - 31), 422, "STALE_FIX", "fix.recorded_at"
    )
    far = dict(other)
    far["lat"], far["lon"] = offset(other["lat"], other["lon"], 0, 150)
    error = assert_error(api.throw(headers, far), 409, "TOO_FAR", "fix")
    assert error["details"]["distance_m"] == pytest.approx(150, abs=0.5)
    assert_error(
        api.throw(headers, {**other, "id": f"w:{api.cid}:wtw3sjq:1:0"}),
        410,
        "SPAWN_EXPIRED",
        "spawn_id",
    )
    assert_error(
        api.throw(headers, {**other, "id": f"w:{api.cid}:wtw3s:1:0"}),
        404,
        "SPAWN_NOT_FOUND",
        "spawn_id",
    )
    assert_error(
        api.throw(headers, {**other, "id": "w:1:no:pe"}), 422, "validation_error", "spawn_id"
    )
    assert_error(api.throw(headers, other, accuracy_m=0), 422, "validation_error", "fix.accuracy_m")
    assert_error(api.throw(api.marketer, other), 403, "forbidden_role")

    status = client.get("/api/game/me", headers=headers).get_json()
    assert status == {
        "catches_today": 1,
        "daily_cap": 500,
        "cooldown_until": T0 + 10,
        "warned": False,
        "suspended": False,
    }
    collection = client.get("/api/game/collection", headers=headers).get_json()
    assert collection["catches"] == 1 and collection["species"] == 1
    assert collection["items"][0]["species"] == view["species"]
    assert collection["items"][0]["name"] == view["name"]


def test_leaderboards_show_names_to_shoppers_and_ids_to_marketers(client, auth, api):
    amy, amy_id = api.shopper()
    bob, bob_id = api.shopper()
    points = {}
    for headers, shopper_id in ((amy, amy_id), (bob, bob_id)):
        view = api.catchable(headers, shopper_id, store=False)[0]
        assert api.throw(headers, view).get_json()["outcome"] == "caught"
        points[shopper_id] = view["points"]
    url = f"/api/game/leaderboards/{api.cid}"
    board = client.get(url, headers=amy).get_json()
    assert board["players"] == 2 and board["me"]["shopper_id"] == amy_id
    assert board["me"]["points"] == points[amy_id]
    for entry in board["entries"]:
        assert "shopper_id" not in entry
        assert entry["name"].startswith("shopper")  # the e-mail's local part by default
    assert [e["you"] for e in board["entries"]].count(True) == 1
    mine = next(e for e in board["entries"] if e["you"])
    assert mine["points"] == points[amy_id]
    seen = client.get(url, headers=api.marketer).get_json()
    assert {e["shopper_id"] for e in seen["entries"]} == {amy_id, bob_id}
    assert seen["me"] is None and not any(e["you"] for e in seen["entries"])
    city = client.get(url + "?scope=city&city=Shanghai&period=day", headers=amy).get_json()
    assert city["day"] == "2026-05-29" and city["players"] == 2
    assert_error(client.get(url + "?scope=city", headers=amy), 422, "validation_error", "city")
    assert_error(client.get(url + "?period=week", headers=amy), 422, "validation_error", "period")
    assert_error(
        client.get("/api/game/leaderboards/999", headers=amy), 404, "game_not_found", "campaign_id"
    )


def test_sprites_are_public_pngs_with_etags(client, api):
    pytest.importorskip("game.sprites", reason="game/sprites.py is not written yet")
    url = f"/api/game/sprites/{api.cid}/koi.png"
    response = client.get(url)
    assert response.status_code == 200 and response.mimetype == "image/png"
    assert response.headers["Cache-Control"] == "public, max-age=86400, immutable"
    etag = response.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    image = Image.open(io.BytesIO(response.data))
    assert image.format == "PNG" and image.size == (256, 256) and image.mode == "RGBA"
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == etag
    assert client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
    small = client.get(url + "?size=128")
    assert Image.open(io.BytesIO(small.data)).size == (128, 128)
    assert small.headers["ETag"] != etag
    assert_error(client.get(url + "?size=100"), 422, "validation_error", "size")
    assert_error(
        client.get(f"/api/game/sprites/{api.cid}/unicorn.png"), 404, "species_not_found", "species"
    )
    assert_error(client.get("/api/game/sprites/999/koi.png"), 404, "species_not_found", "species")


def test_strikes_for_marketers(client, auth, api):
    headers, shopper_id = api.shopper()
    view = api.spawns(headers)[0]
    assert_error(api.throw(headers, view, mock=True), 422, "UNTRUSTED_FIX", "fix")
    url = f"/api/game/shoppers/{shopper_id}/strikes"
    strikes = client.get(url, headers=api.marketer).get_json()
    assert strikes["strikes"] == 1 and strikes["level"] == "warning"
    assert strikes["history"][0]["evidence"]["verdict"] == "mocked"
    assert client.get("/api/game/me", headers=headers).get_json()["warned"] is True
    assert_error(client.get(url, headers=headers), 403, "forbidden_role")
    cleared = client.delete(url, headers=api.marketer).get_json()
    assert cleared["strikes"] == 0 and cleared["level"] == "none"
    assert cleared["history"][-1]["reason"] == "cleared"
    assert cleared["history"][-1]["evidence"]["by"].startswith("marketer:")
    _, marketer_user = auth.headers("marketer")
    for path in (
        f"/api/game/shoppers/{marketer_user['id']}/strikes",
        "/api/game/shoppers/nobody/strikes",
    ):
        assert_error(client.get(path, headers=api.marketer), 404, "shopper_not_found", "shopper_id")
        assert_error(
            client.delete(path, headers=api.marketer), 404, "shopper_not_found", "shopper_id"
        )


def test_roll_audit(client, api):
    headers, shopper_id = api.shopper()
    spawn_id = f"w:{api.cid}:wtw3sjq:1977777:3"
    query = {"spawn_id": spawn_id, "shopper_id": shopper_id, "attempt": 2}
    answer = client.get("/api/game/rolls", query_string=query, headers=api.marketer).get_json()
    roll, flee = roll_for(spawn_id, shopper_id, 2)
    assert answer == {**query, "roll": round(roll, 6), "flee_roll": round(flee, 6)}
    assert_error(
        client.get("/api/game/rolls", query_string=query, headers=headers), 403, "forbidden_role"
    )
    assert_error(
        client.get("/api/game/rolls", query_string={**query, "attempt": 0}, headers=api.marketer),
        422,
        "validation_error",
        "attempt",
    )


def test_game_events_reach_the_shoppers_socket(app, client, api):
    headers, shopper_id = api.shopper(at=None)
    token = headers["Authorization"].split(" ", 1)[1]
    sock = app.extensions["socketio"].test_client(
        app, namespace="/shopper", auth={"token": token}, flask_test_client=client
    )
    sock.get_received("/shopper")
    api.fix(headers, *SHANGHAI)
    views = api.spawns(headers)
    first = [m for m in sock.get_received("/shopper") if m["name"] != "geofence"]
    api.spawns(headers)
    second = [m for m in sock.get_received("/shopper") if m["name"] != "geofence"]
    # Rare creatures within catching range, nearest first, at most three per query, once each.
    rare = [v["id"] for v in views if v["rarity"] != "common" and v["distance_m"] <= 80]
    assert len(rare) > 3
    assert {m["name"] for m in first + second} == {"rare_spawn"}
    assert [m["args"][0]["id"] for m in first] == rare[:3]
    assert [m["args"][0]["id"] for m in second] == rare[3:6]
    view = api.catchable(headers, shopper_id, store=True)[0]
    for _ in range(len(rare)):
        api.spawns(headers)  # the rest of the announcements
    sock.get_received("/shopper")
    result = api.throw(headers, view).get_json()
    received = sock.get_received("/shopper")
    # The coupon is issued (and announced by promotions) before the catch's own events.
    assert [m["name"] for m in received] == ["coupon_issued", "catch_result", "reward"]
    by_name = {m["name"]: m["args"][0] for m in received}
    assert by_name["catch_result"]["outcome"] == "caught"
    assert by_name["catch_result"]["roll"] == result["roll"]
    assert by_name["reward"] == {
        "spawn_id": view["id"],
        "species": view["species"],
        "points": view["points"],
        "total_points": view["points"],
        "coupon": result["coupon"],
    }
    assert by_name["coupon_issued"]["id"] == result["coupon"]["id"]


def test_erasure_removes_the_game_state(app, client, api):
    headers, shopper_id = api.shopper()
    view = api.catchable(headers, shopper_id)[0]
    assert api.throw(headers, view).status_code == 200
    assert_error(api.throw(headers, api.spawns(headers)[1], mock=True), 422, "UNTRUSTED_FIX", "fix")
    r = app.extensions["redis"]
    assert list(r.scan_iter(match=f"{keys.shopper(shopper_id)}*"))
    assert client.delete("/api/me", headers=headers).get_json() == {"status": "erased"}
    assert list(r.scan_iter(match=f"{keys.shopper(shopper_id)}*")) == []
    game = app.extensions["game"]
    assert game.collection(shopper_id)["items"] == []
    assert game.strikes(shopper_id)["history"] == []
