"""Live streams over REST: scheduling, hosts' rights, status moves, products and images."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from .conftest import T0
from .helpers import assert_error, bearer


def png(width=800, height=600, color=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def people(auth):
    marketer, _ = auth.headers("marketer")
    host = auth.user("host")
    other_host = auth.user("host")
    shopper, _ = auth.headers("shopper")
    return {
        "marketer": marketer,
        "host": bearer(host["token"]),
        "host_id": host["user"]["id"],
        "other_host": bearer(other_host["token"]),
        "other_host_id": other_host["user"]["id"],
        "shopper": shopper,
    }


def stream_body(people, **extra):
    body = {
        "title": "Autumn coats",
        "brand": "Acme",
        "playback_url": "https://video.example/a",
        "hosts": [people["host_id"]],
        "starts_at": T0 + 3600,
    }
    body.update(extra)
    return body


def schedule(client, people, who="marketer", **extra):
    response = client.post("/api/streams", json=stream_body(people, **extra), headers=people[who])
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_schedule_list_and_public_view(client, people):
    stream = schedule(client, people)
    assert stream["status"] == "scheduled" and stream["hosts"] == [people["host_id"]]
    public = client.get(f"/api/streams/{stream['id']}").get_json()
    assert "hosts" not in public and public["title"] == "Autumn coats"
    listed = client.get("/api/streams?status=scheduled").get_json()
    assert [s["id"] for s in listed["items"]] == [stream["id"]]
    assert client.get("/api/streams?status=live").get_json()["items"] == []


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"playback_url": "http://insecure.example/a"}, "validation_error", "playback_url"),
        ({"hosts": []}, "validation_error", "hosts"),
        ({"title": ""}, "validation_error", "title"),
        ({"starts_at": "tomorrow"}, "validation_error", "starts_at"),
    ],
)
def test_bad_streams_are_refused_with_the_field(client, people, change, code, field):
    response = client.post(
        "/api/streams", json=stream_body(people, **change), headers=people["marketer"]
    )
    assert_error(response, 422, code, field)


def test_hosts_must_be_host_accounts_and_act_only_for_their_streams(client, people, auth):
    _, shopper = auth.headers("shopper")
    response = client.post(
        "/api/streams", json=stream_body(people, hosts=[shopper["id"]]), headers=people["marketer"]
    )
    assert_error(response, 422, "not_a_host", "hosts[0]")
    response = client.post(
        "/api/streams",
        headers=people["host"],
        json=stream_body(people, hosts=[people["other_host_id"]]),
    )
    assert_error(response, 403, "not_your_stream", "hosts")
    mine = schedule(client, people, who="host")
    assert client.get(f"/api/streams/{mine['id']}", headers=people["host"]).get_json()["hosts"] == [
        people["host_id"]
    ]
    for method, url, body in (
        ("patch", f"/api/streams/{mine['id']}", {"title": "x"}),
        ("post", f"/api/streams/{mine['id']}/transition", {"to": "live"}),
        ("post", f"/api/streams/{mine['id']}/products", {"name": "x", "price_fen": 1}),
    ):
        response = getattr(client, method)(url, json=body, headers=people["other_host"])
        assert_error(response, 403, "not_your_stream", "stream_id")
    assert_error(
        client.post("/api/streams", json=stream_body(people), headers=people["shopper"]),
        403,
        "forbidden_role",
    )


def test_status_moves_scheduled_live_ended(client, people):
    stream = schedule(client, people)
    url = f"/api/streams/{stream['id']}/transition"
    live = client.post(url, json={"to": "live"}, headers=people["host"]).get_json()
    assert live["status"] == "live" and live["live_at"] == T0
    assert client.post(url, json={"to": "live"}, headers=people["host"]).status_code == 200
    assert_error(
        client.patch(
            f"/api/streams/{stream['id']}", json={"title": "late"}, headers=people["host"]
        ),
        409,
        "STREAM_NOT_SCHEDULED",
        "stream_id",
    )
    ended = client.post(url, json={"to": "ended"}, headers=people["marketer"]).get_json()
    assert ended["status"] == "ended"
    error = assert_error(
        client.post(url, json={"to": "live"}, headers=people["host"]),
        409,
        "INVALID_TRANSITION",
        "to",
    )
    assert error["details"] == {"status": "ended"}


def test_products_with_images_resized_and_thumbnailed(client, people):
    stream = schedule(client, people)
    url = f"/api/streams/{stream['id']}/products"
    response = client.post(
        url,
        headers=people["host"],
        content_type="multipart/form-data",
        data={
            "name": "Wool coat",
            "price_fen": "129900",
            "image": (io.BytesIO(png(2400, 1800)), "coat.png"),
        },
    )
    assert response.status_code == 201, response.get_json()
    product = response.get_json()
    assert product["price_fen"] == 129900 and product["image"]["width"] == 1200
    image = client.get(f"{url}/{product['id']}/image.jpg")
    assert image.mimetype == "image/jpeg" and Image.open(io.BytesIO(image.data)).size == (1200, 900)
    thumb = client.get(f"{url}/{product['id']}/thumb.jpg")
    assert Image.open(io.BytesIO(thumb.data)).size == (240, 180)
    again = client.get(
        f"{url}/{product['id']}/thumb.jpg", headers={"If-None-Match": thumb.headers["ETag"]}
    )
    assert again.status_code == 304
    plain = client.post(
        url, json={"name": "Scarf", "price_fen": 19900}, headers=people["marketer"]
    ).get_json()
    assert plain["image"] is None
    listed = client.get(f"/api/streams/{stream['id']}").get_json()["products"]
    assert [p["name"] for p in listed] == ["Wool coat", "Scarf"]
    assert client.delete(f"{url}/{plain['id']}", headers=people["host"]).status_code == 200
    assert_error(client.get(f"{url}/{plain['id']}/image.jpg"), 404, "image_not_found", "product_id")


@pytest.mark.parametrize(
    ("data", "code", "field"),
    [
        ({"name": "x", "price_fen": "12.50"}, "validation_error", "price_fen"),
        ({"name": "", "price_fen": "100"}, "validation_error", "name"),
        (
            {"name": "x", "price_fen": "100", "image": (io.BytesIO(b"not an image"), "x.png")},
            "image_invalid",
            "image",
        ),
        (
            {"name": "x", "price_fen": "100", "image": (io.BytesIO(png(40, 40)), "x.png")},
            "image_too_small",
            "image",
        ),
    ],
)
def test_bad_products_are_refused(client, people, data, code, field):
    stream = schedule(client, people)
    response = client.post(
        f"/api/streams/{stream['id']}/products",
        headers=people["host"],
        content_type="multipart/form-data",
        data=data,
    )
    assert_error(response, 422, code, field)
    assert client.get(f"/api/streams/{stream['id']}").get_json()["products"] == []


def test_a_product_links_an_offer_of_the_streams_campaign(app, client, people):
    promos = app.extensions["promotions"]
    from promotions.models import CampaignIn, OfferIn

    cid = promos.campaigns.create(
        CampaignIn(name="c", starts_at=T0, ends_at=T0 + 86400), actor="m"
    )["id"]
    oid = promos.campaigns.create_offer(
        cid,
        OfferIn(name="drop", kind="amount_off", amount_off_fen=500, channels=["live_drop"]),
        actor="m",
    )["id"]
    unlinked = schedule(client, people)
    assert_error(
        client.post(
            f"/api/streams/{unlinked['id']}/products",
            headers=people["host"],
            json={"name": "x", "price_fen": 1, "offer_id": oid},
        ),
        422,
        "no_campaign",
        "offer_id",
    )
    linked = schedule(client, people, campaign_id=cid)
    product = client.post(
        f"/api/streams/{linked['id']}/products",
        headers=people["host"],
        json={"name": "x", "price_fen": 1, "offer_id": oid},
    ).get_json()
    assert product["offer_id"] == oid
    assert_error(
        client.post(
            f"/api/streams/{linked['id']}/products",
            headers=people["host"],
            json={"name": "x", "price_fen": 1, "offer_id": "o99"},
        ),
        404,
        "offer_not_found",
        "offer_id",
    )


@pytest.mark.parametrize("cursor", ["e0706", "1e5", "abc", "1.2.3"])
def test_a_malformed_list_cursor_is_a_validation_error(client, cursor):
    assert_error(client.get(f"/api/streams?cursor={cursor}"), 422, "validation_error", "cursor")


def test_marketers_grant_a_campaign_to_a_stream_over_rest(app, client, people):
    promos = app.extensions["promotions"]
    from promotions.models import CampaignIn

    cid = promos.campaigns.create(
        CampaignIn(name="c", starts_at=T0, ends_at=T0 + 86400), actor="m"
    )["id"]
    assert_error(
        client.post(
            "/api/streams", headers=people["host"], json=stream_body(people, campaign_id=cid)
        ),
        403,
        "CAMPAIGN_NOT_GRANTED",
        "campaign_id",
    )
    mine = schedule(client, people, who="host")
    url = f"/api/streams/{mine['id']}"
    assert_error(
        client.patch(url, headers=people["host"], json={"campaign_id": cid}),
        403,
        "CAMPAIGN_NOT_GRANTED",
        "campaign_id",
    )
    grants = f"/api/campaigns/{cid}/grants"
    assert_error(
        client.put(f"{grants}/{mine['id']}", headers=people["host"]), 403, "forbidden_role"
    )
    assert_error(
        client.put(f"{grants}/999", headers=people["marketer"]),
        404,
        "stream_not_found",
        "stream_id",
    )
    granted = client.put(f"{grants}/{mine['id']}", headers=people["marketer"])
    assert granted.status_code == 200 and granted.get_json()["stream_id"] == mine["id"]
    assert (
        client.put(f"{grants}/{mine['id']}", headers=people["marketer"]).get_json()
        == granted.get_json()
    )  # again: the same grant
    assert [
        g["stream_id"] for g in client.get(grants, headers=people["marketer"]).get_json()["items"]
    ] == [mine["id"]]
    patched = client.patch(url, headers=people["host"], json={"campaign_id": cid})
    assert patched.status_code == 200 and patched.get_json()["campaign_id"] == cid
    revoked = client.delete(f"{grants}/{mine['id']}", headers=people["marketer"])
    assert revoked.get_json()["status"] == "revoked"
    assert client.get(grants, headers=people["marketer"]).get_json()["items"] == []
    ledger = client.get(
        f"/api/campaigns/{cid}/ledger?type=grant", headers=people["marketer"]
    ).get_json()["items"]
    assert [(e["type"], e["stream_id"]) for e in ledger] == [("grant", mine["id"])]
    # A marketer attaching a campaign grants it.
    theirs = schedule(client, people, campaign_id=cid)
    assert theirs["id"] in [
        g["stream_id"] for g in client.get(grants, headers=people["marketer"]).get_json()["items"]
    ]


def test_a_streams_hosts_list_the_offers_a_drop_may_issue(app, client, people):
    from promotions.models import CampaignIn, OfferIn

    promos = app.extensions["promotions"]
    cid = promos.campaigns.create(
        CampaignIn(name="c", starts_at=T0, ends_at=T0 + 86400), actor="m"
    )["id"]
    for name, channels in (("drop", ["live_drop"]), ("visit", ["visit"])):
        promos.campaigns.create_offer(
            cid,
            OfferIn(name=name, kind="amount_off", amount_off_fen=500, channels=channels),
            actor="m",
        )
    plain = schedule(client, people)
    assert client.get(f"/api/streams/{plain['id']}/offers", headers=people["host"]).get_json() == {
        "items": []
    }
    linked = schedule(client, people, campaign_id=cid)
    for who in ("host", "marketer"):
        listed = client.get(f"/api/streams/{linked['id']}/offers", headers=people[who])
        assert [o["name"] for o in listed.get_json()["items"]] == ["drop"]
    assert_error(
        client.get(f"/api/streams/{linked['id']}/offers", headers=people["other_host"]),
        403,
        "not_your_stream",
        "stream_id",
    )
    assert (
        client.get(f"/api/streams/{linked['id']}/offers", headers=people["shopper"]).status_code
        == 403
    )
