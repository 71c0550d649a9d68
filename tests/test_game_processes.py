"""The game across two real server processes (gunicorn, real clock): both compute the same
creatures, and a creature one server listed is caught through the other."""

from __future__ import annotations

import time

import pytest
import requests

from game import roll_for
from game.models import CATCH_RATE, FLEE_RATE, GameConfigIn
from game.spawns import SLOT_S
from promotions.models import CampaignIn, OfferIn
from tests.test_processes import (
    bearer,
    session_for,
)
from tests.two_servers import (  # noqa: F401 - fixtures
    _server_logs,
    helper_app,
    servers,
    shared_redis,
)

from .game_helpers import SPECIES

STORE = {
    "id": "game-mall",
    "name": "Game Mall",
    "brand": "Bailian",
    "city": "Shanghai",
    "lat": 31.2300,
    "lon": 121.4700,
    "fence": {"type": "circle", "radius_m": 100},
}
HERE = {"lat": STORE["lat"], "lon": STORE["lon"], "accuracy_m": 5}


@pytest.fixture(scope="module")
def campaign(helper_app) -> str:
    """A live campaign (real clock) at one store with a dense game and a game offer."""
    promos = helper_app.extensions["promotions"]
    helper_app.extensions["stores"].create(dict(STORE))
    now = time.time()
    cid = promos.campaigns.create(
        CampaignIn(
            name="Game processes",
            starts_at=now - 60,
            ends_at=now + 3600,
            targets={"stores": [STORE["id"]]},
        ),
        actor="test",
    )["id"]
    oid = promos.campaigns.create_offer(
        cid,
        OfferIn(name="10 off", kind="amount_off", amount_off_fen=1000, channels=["game"]),
        actor="test",
    )["id"]
    promos.campaigns.transition(cid, "scheduled", actor="test")
    helper_app.extensions["game"].configure(
        cid,
        GameConfigIn(
            species=SPECIES, density_per_cell=20, store_density=20, offer_id=oid, seed="processes"
        ),
    )
    return cid


def test_two_servers_list_the_same_spawns_and_share_catches(servers, helper_app, campaign):
    server_a, server_b = servers
    session = session_for(helper_app, "shopper")
    shopper_id = session["user"]["id"]
    helper_app.extensions["geo"].set_consent(shopper_id, True)
    auth = bearer(session["token"])
    with requests.Session() as http:
        response = http.post(
            server_a.url + "/api/location/fix",
            headers=auth,
            timeout=10,
            json={**HERE, "recorded_at": time.time()},
        )
        assert response.status_code == 200 and response.json()["accepted"] == 1
        # Creatures change only at 15-minute slot boundaries: retry if one passes meanwhile.
        for _ in range(3):
            slot = time.time() // SLOT_S
            lists = [
                http.get(server.url + "/api/game/spawns", headers=auth, timeout=10)
                for server in (server_a, server_b)
            ]
            if time.time() // SLOT_S == slot:
                break
        assert [r.status_code for r in lists] == [200, 200], [r.text for r in lists]
        from_a, from_b = (r.json() for r in lists)
        assert from_a == from_b
        spawns = from_b["spawns"]
        assert len(spawns) == 50 and any(s["store_id"] == STORE["id"] for s in spawns)
        assert any(s["campaign_id"] == campaign for s in spawns)

        # Throw on A at a creature B listed, from where the shopper stands.
        target = next(
            s for s in spawns if s["distance_m"] <= 75 and s["expires_at"] > time.time() + 60
        )
        fix = {**HERE, "recorded_at": time.time(), "speed_mps": 0}
        response = http.post(
            server_a.url + "/api/game/catches",
            headers=auth,
            timeout=10,
            json={"spawn_id": target["id"], "fix": fix},
        )
        assert response.status_code == 200, response.text
        result = response.json()
        roll, flee = roll_for(target["id"], shopper_id, 1)
        rarity = target["rarity"]
        expected = (
            "caught"
            if roll < CATCH_RATE[rarity]
            else "fled"
            if flee < FLEE_RATE[rarity]
            else "missed"
        )
        assert result["outcome"] == expected and result["attempt"] == 1
        assert result["spawn"]["id"] == target["id"]

        # B sees what A recorded: the catch, the flight, or the cooldown the miss started.
        response = http.post(
            server_b.url + "/api/game/catches",
            headers=auth,
            timeout=10,
            json={"spawn_id": target["id"], "fix": fix},
        )
        code = {"caught": "ALREADY_CAUGHT", "fled": "FLED", "missed": "COOLDOWN"}[expected]
        assert response.status_code == 409 and response.json()["error"]["code"] == code
        status = http.get(server_b.url + "/api/game/me", headers=auth, timeout=10).json()
        assert status["catches_today"] == (1 if expected == "caught" else 0)
        assert status["cooldown_until"] is not None
