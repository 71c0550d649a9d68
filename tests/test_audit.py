"""The audit log: every marketer/admin change is one entry; list, filters, paging, CSV, roles."""

from __future__ import annotations

import csv
import io

import pytest

from core.audit import KEY, AuditFilter, AuditLog

from .conftest import T0
from .game_helpers import game_config
from .helpers import assert_error, bearer

SHANGHAI = (31.2400, 121.4800)


def store(sid: str, **fields) -> dict:
    body = {
        "id": sid,
        "name": sid,
        "brand": "Acme",
        "city": "Shanghai",
        "lat": SHANGHAI[0],
        "lon": SHANGHAI[1],
        "fence": {"type": "circle", "radius_m": 80},
    }
    body.update(fields)
    return body


@pytest.fixture
def marketer(auth):
    headers, user = auth.headers("marketer")
    return headers, f"marketer:{user['id']}"


def entries(client, headers, query: str = "") -> list[dict]:
    response = client.get(f"/api/audit{query}", headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]


def only(client, headers, **where) -> dict:
    query = "?" + "&".join(f"{k}={v}" for k, v in where.items())
    found = entries(client, headers, query)
    assert len(found) == 1, found
    return found[0]


def test_store_create_patch_delete_each_record_one_entry(client, marketer, clock):
    headers, actor = marketer
    assert client.post("/api/stores", json=store("s1"), headers=headers).status_code == 201
    created = only(client, headers, kind="store", action="create")
    assert created["actor"] == actor and created["object_id"] == "s1" and created["ts"] == T0
    assert created["before"] == {} and created["after"]["name"] == "s1"
    assert created["after"]["fence"]["radius_m"] == 80

    clock.advance(60)
    hours = {"tz": "Asia/Shanghai", "always": True}
    patch = {"name": "Renamed", "opening_hours": hours, "fence": {"type": "circle", "radius_m": 50}}
    response = client.patch("/api/stores/s1", json=patch, headers=headers)
    assert response.status_code == 200, response.get_json()
    updated = only(client, headers, action="update")
    # Only the fields that changed, before → after: never the untouched brand or city.
    assert set(updated["after"]) == {"name", "opening_hours", "fence"}
    assert updated["before"]["name"] == "s1" and updated["after"]["name"] == "Renamed"
    assert updated["before"]["fence"]["radius_m"] == 80
    assert updated["after"]["fence"]["radius_m"] == 50
    assert updated["ts"] == T0 + 60

    body = store("s1", name="Replaced")
    assert client.put("/api/stores/s1", json=body, headers=headers).status_code == 200
    replaced = only(client, headers, action="replace")
    assert replaced["before"]["name"] == "Renamed" and replaced["after"]["name"] == "Replaced"

    assert client.delete("/api/stores/s1", headers=headers).status_code == 200
    deleted = only(client, headers, action="delete")
    assert deleted["object_id"] == "s1" and deleted["after"] == {}
    assert deleted["before"]["name"] == "Replaced"
    assert len(entries(client, headers)) == 4

    # A refused change records nothing.
    assert client.delete("/api/stores/s1", headers=headers).status_code == 404
    assert client.post("/api/stores", json=store("bad", lat=99), headers=headers).status_code == 422
    assert len(entries(client, headers)) == 4


def test_an_import_records_one_summary_entry(client, marketer):
    headers, actor = marketer
    rows = ["id,name,brand,city,lat,lon"]
    rows += [f"s{i},Store {i},Acme,Shanghai,31.2{i:03d},121.48" for i in range(200)]
    rows.append("bad,Bad,Acme,Shanghai,999,121.48")
    text = "\n".join(rows) + "\n"
    response = client.post(
        "/api/stores/import?partial=true",
        data=text,
        headers={**headers, "Content-Type": "text/csv"},
    )
    assert response.status_code == 201, response.get_json()
    (summary,) = entries(client, headers)
    assert summary["action"] == "import" and summary["kind"] == "store"
    assert summary["actor"] == actor
    assert summary["after"] == {
        "format": "csv",
        "partial": True,
        "received": 201,
        "written": 200,
        "rejected": 1,
    }
    # An import that writes nothing (all or nothing, one bad row) records nothing.
    refused = client.post(
        "/api/stores/import", data=text, headers={**headers, "Content-Type": "text/csv"}
    )
    assert refused.status_code == 422
    assert len(entries(client, headers)) == 1


def campaign_body(**extra) -> dict:
    body = {
        "name": "Double 11",
        "starts_at": T0 - 3600,
        "ends_at": T0 + 30 * 86_400,
        "targets": {"brands": ["Acme"]},
    }
    body.update(extra)
    return body


OFFER = {
    "name": "20 off",
    "kind": "amount_off",
    "amount_off_fen": 2000,
    "min_spend_fen": 10_000,
    "channels": ["manual", "visit"],
}


def test_campaign_offer_and_game_changes(client, marketer):
    headers, actor = marketer
    client.post("/api/stores", json=store("acme-1"), headers=headers)
    response = client.post("/api/campaigns", json=campaign_body(), headers=headers)
    assert response.status_code == 201, response.get_json()
    cid = response.get_json()["id"]
    created = only(client, headers, kind="campaign", action="create")
    assert created["object_id"] == cid and created["after"]["name"] == "Double 11"
    assert created["actor"] == actor

    client.patch(f"/api/campaigns/{cid}", json={"name": "Singles"}, headers=headers)
    updated = only(client, headers, kind="campaign", action="update")
    assert updated["before"] == {"name": "Double 11"} and updated["after"] == {"name": "Singles"}

    response = client.post(f"/api/campaigns/{cid}/offers", json=OFFER, headers=headers)
    assert response.status_code == 201, response.get_json()
    oid = response.get_json()["id"]
    offer = only(client, headers, kind="offer", action="create")
    assert offer["object_id"] == f"{cid}/{oid}" and offer["after"]["amount_off_fen"] == 2000

    url = f"/api/campaigns/{cid}/offers/{oid}"
    response = client.patch(url, json={"caps": {"total": 5}, "active": False}, headers=headers)
    assert response.status_code == 200, response.get_json()
    offer = only(client, headers, kind="offer", action="update")
    assert offer["before"]["active"] is True and offer["after"]["active"] is False
    assert offer["after"]["caps"]["total"] == 5
    assert "name" not in offer["after"]

    moved = client.post(
        f"/api/campaigns/{cid}/transition", json={"to": "scheduled"}, headers=headers
    )
    assert moved.get_json()["status"] == "live"
    transition = only(client, headers, action="transition")
    assert transition["before"]["status"] == "draft" and transition["after"]["status"] == "live"

    body = game_config().model_dump(mode="json")
    assert client.put(f"/api/campaigns/{cid}/game", json=body, headers=headers).status_code == 200
    game = only(client, headers, kind="game")
    assert game["action"] == "configure" and game["object_id"] == cid
    assert game["after"]["seed"] == "test-seed"
    body["store_density"] = 2
    assert client.put(f"/api/campaigns/{cid}/game", json=body, headers=headers).status_code == 200
    game = only(client, headers, kind="game", action="update")
    assert game["before"]["store_density"] == 6 and game["after"]["store_density"] == 2
    assert set(game["after"]) <= {"store_density", "updated_at", "version"}


def test_grants_programs_and_coupon_voids(app, client, auth, marketer):
    headers, actor = marketer
    client.post("/api/stores", json=store("acme-1"), headers=headers)
    cid = client.post("/api/campaigns", json=campaign_body(), headers=headers).get_json()["id"]
    oid = client.post(f"/api/campaigns/{cid}/offers", json=OFFER, headers=headers).get_json()["id"]
    client.post(f"/api/campaigns/{cid}/transition", json={"to": "scheduled"}, headers=headers)
    host = auth.user("host")
    stream = client.post(
        "/api/streams",
        headers=bearer(host["token"]),
        json={
            "title": "Coats",
            "brand": "Acme",
            "playback_url": "https://video.example/a",
            "hosts": [host["user"]["id"]],
            "starts_at": T0 + 3600,
        },
    ).get_json()
    sid = stream["id"]
    assert client.put(f"/api/campaigns/{cid}/grants/{sid}", headers=headers).status_code == 200
    assert client.put(f"/api/campaigns/{cid}/grants/{sid}", headers=headers).status_code == 200
    grant = only(client, headers, kind="grant")  # granting again changed nothing
    assert grant["action"] == "grant" and grant["object_id"] == f"{cid}/{sid}"
    assert client.delete(f"/api/campaigns/{cid}/grants/{sid}", headers=headers).status_code == 200
    revoke = only(client, headers, kind="grant", action="revoke")
    assert revoke["before"] == {"granted": True} and revoke["after"] == {"granted": False}

    # A marketer scheduling a stream with the campaign grants it: the same one entry.
    scheduled = client.post(
        "/api/streams",
        headers=headers,
        json={
            "title": "Boots",
            "brand": "Acme",
            "playback_url": "https://video.example/b",
            "hosts": [host["user"]["id"]],
            "starts_at": T0 + 7200,
            "campaign_id": cid,
        },
    )
    assert scheduled.status_code == 201, scheduled.get_json()
    other = scheduled.get_json()["id"]
    grant = only(client, headers, kind="grant", object_id=f"{cid}/{other}")
    assert grant["action"] == "grant" and grant["after"] == {"granted": True}
    # ... and attaching it to a stream by a PATCH too, once.
    for _ in range(2):
        patched = client.patch(f"/api/streams/{sid}", json={"campaign_id": cid}, headers=headers)
        assert patched.status_code == 200, patched.get_json()
    again = entries(client, headers, f"?kind=grant&action=grant&object_id={cid}/{sid}")
    assert len(again) == 2  # the PUT before the revoke, and this PATCH once
    assert len(entries(client, headers, "?kind=grant")) == 4

    program = {"id": "acme-club", "name": "Acme Club"}
    assert client.post("/api/membership-programs", json=program, headers=headers).status_code == 201
    created = only(client, headers, kind="program")
    assert created["object_id"] == "acme-club" and created["after"]["name"] == "Acme Club"

    _, shopper = auth.headers("shopper")
    issued = client.post(
        f"/api/campaigns/{cid}/offers/{oid}/issue",
        json={"shopper_id": shopper["id"], "idempotency_key": "audit-k1"},
        headers=headers,
    )
    coupon_id = issued.get_json()["coupon"]["id"]
    void = client.post(f"/api/coupons/{coupon_id}/void", json={"reason": "x"}, headers=headers)
    assert void.status_code == 200
    voided = only(client, headers, kind="coupon")
    assert voided["action"] == "void" and voided["actor"] == actor
    assert voided["before"]["status"] == "issued" and voided["after"]["status"] == "voided"
    # No shopper's identity in what changed.
    assert shopper["id"] not in str(voided["before"]) + str(voided["after"])


@pytest.mark.parametrize("role", ["shopper", "staff", "host"])
def test_only_marketers_and_admins_read_the_log(client, auth, role):
    headers, _ = auth.headers(role, store_id="s1" if role == "staff" else None)
    assert_error(client.get("/api/audit", headers=headers), 403, "forbidden_role")
    assert_error(client.get("/api/audit.csv", headers=headers), 403, "forbidden_role")
    admin, _ = auth.headers("admin")
    assert client.get("/api/audit", headers=admin).status_code == 200


def fill(app, clock, n: int) -> AuditLog:
    log = app.extensions["audit"]
    for i in range(n):
        clock.set(T0 + i)
        log.record(
            f"marketer:m{i % 2}",
            "update" if i % 3 else "create",
            "store" if i % 2 else "campaign",
            f"o{i}",
            {"n": i - 1},
            {"n": i},
        )
    return log


def test_newest_first_with_cursor_paging_and_filters(app, client, auth, clock):
    fill(app, clock, 25)
    headers, _ = auth.headers("admin")
    seen, cursor = [], None
    while True:
        query = "?limit=10" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(f"/api/audit{query}", headers=headers).get_json()
        seen += [e["object_id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"o{i}" for i in range(24, -1, -1)]

    by_actor = entries(client, headers, "?actor=marketer:m1&kind=store&action=update")
    assert [e["object_id"] for e in by_actor] == [
        f"o{i}" for i in range(24, -1, -1) if i % 2 and i % 3
    ]
    window = entries(client, headers, f"?since={T0 + 5}&until={T0 + 8}")
    assert [e["object_id"] for e in window] == ["o7", "o6", "o5"]
    assert [e["object_id"] for e in entries(client, headers, "?object_id=o3")] == ["o3"]
    assert entries(client, headers, "?cursor=0-0") == []  # nothing is older than the first id
    assert entries(client, headers, "?actor=nobody") == []
    # Filtered paging: a page of 2 continues where it stopped.
    page = client.get("/api/audit?kind=campaign&limit=2", headers=headers).get_json()
    assert [e["object_id"] for e in page["items"]] == ["o24", "o22"]
    page = client.get(
        f"/api/audit?kind=campaign&limit=2&cursor={page['next_cursor']}", headers=headers
    ).get_json()
    assert [e["object_id"] for e in page["items"]] == ["o20", "o18"]


@pytest.mark.parametrize(
    "query, field",
    [
        ("?limit=0", "limit"),
        ("?cursor=abc", "cursor"),
        ("?since=x", "since"),
        ("?bogus=1", "bogus"),
    ],
)
def test_query_validation(client, auth, query, field):
    headers, _ = auth.headers("marketer")
    response = client.get(f"/api/audit{query}", headers=headers)
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == field


def test_csv_export_defuses_formulas(app, client, marketer):
    headers, actor = marketer
    body = store("s1", name='=HYPERLINK("http://x","?")')
    assert client.post("/api/stores", json=body, headers=headers).status_code == 201
    client.patch("/api/stores/s1", json={"name": "@SUM(1)"}, headers=headers)
    response = client.get("/api/audit.csv?kind=store", headers=headers)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["id", "time_utc", "actor", "action", "kind", "object_id", "before", "after"]
    assert [r[3] for r in rows[1:]] == ["update", "create"]
    assert rows[1][2] == actor and rows[1][5] == "s1"
    assert rows[1][6] == '{"name": "=HYPERLINK(\\"http://x\\",\\"?\\")"}'
    assert rows[1][7] == '{"name": "@SUM(1)"}'
    # JSON cells start with "{"; any other text cell that starts like a formula is defused.
    app.extensions["audit"].record("=cmd|' /C calc'!A0", "update", "store", "+1", None, None)
    rows = list(csv.reader(io.StringIO(client.get("/api/audit.csv", headers=headers).text)))
    assert rows[1][2] == "'=cmd|' /C calc'!A0" and rows[1][5] == "'+1"


def test_retention_keeps_the_newest_entries(make_app, clock):
    app = make_app(AUDIT_MAX_ENTRIES=10)
    log = fill(app, clock, 30)
    assert log.count() == 10
    page = log.query(limit=100)
    assert [e["object_id"] for e in page["items"]] == [f"o{i}" for i in range(29, 19, -1)]
    assert page["next_cursor"] is None


def test_large_values_are_bounded(app, clock):
    log = app.extensions["audit"]
    ring = [[121.48 + i * 1e-5, 31.24] for i in range(2000)]
    log.record("admin:a", "update", "store", "s1", {"fence": {"rings": [ring]}}, {"fence": None})
    (entry,) = log.query(AuditFilter(object_id="s1"))["items"]
    assert entry["before"]["fence"]["truncated"] is True
    assert entry["before"]["fence"]["chars"] > 2000
    assert len(app.extensions["redis"].xrange(KEY)[0][1]["before"]) < 200


def test_a_marketer_voiding_a_redemption_is_recorded_and_staff_are_not(client, auth, marketer):
    headers, actor = marketer
    client.post("/api/stores", json=store("acme-1"), headers=headers)
    cid = client.post("/api/campaigns", json=campaign_body(), headers=headers).get_json()["id"]
    oid = client.post(f"/api/campaigns/{cid}/offers", json=OFFER, headers=headers).get_json()["id"]
    client.post(f"/api/campaigns/{cid}/transition", json={"to": "scheduled"}, headers=headers)
    shopper_headers, shopper = auth.headers("shopper")
    till, _ = auth.headers("staff", store_id="acme-1")
    coupons = []
    for key in ("r1", "r2"):
        issued = client.post(
            f"/api/campaigns/{cid}/offers/{oid}/issue",
            json={"shopper_id": shopper["id"], "idempotency_key": key},
            headers=headers,
        )
        coupon_id = issued.get_json()["coupon"]["id"]
        code = client.get(f"/api/wallet/{coupon_id}", headers=shopper_headers).get_json()["code"]
        redeemed = client.post(
            "/api/redemptions",
            json={"code": code, "basket_fen": 12_000, "order_ref": f"order-{key}"},
            headers=till,
        )
        assert redeemed.status_code == 201, redeemed.get_json()
        coupons.append(coupon_id)
    before = len(entries(client, headers))
    staff_void = client.post("/api/redemptions/void", json={"coupon_id": coupons[0]}, headers=till)
    assert staff_void.status_code == 200, staff_void.get_json()
    assert len(entries(client, headers)) == before  # staff's own till work is not the log's
    void = client.post("/api/redemptions/void", json={"coupon_id": coupons[1]}, headers=headers)
    assert void.status_code == 200, void.get_json()
    entry = only(client, headers, action="void_redemption")
    assert entry["actor"] == actor and entry["object_id"] == coupons[1]
    assert entry["before"] == {"status": "redeemed"}
    assert entry["after"] == {"status": void.get_json()["status"]} != entry["before"]


def test_a_narrow_filter_over_a_long_log_pages_on_with_a_cursor(app, clock):
    from core.audit import SCAN_LIMIT

    log = app.extensions["audit"]
    log.record("admin:old", "create", "store", "needle")
    with app.extensions["redis"].pipeline(transaction=False) as pipe:
        for i in range(SCAN_LIMIT + 5):
            pipe.xadd(
                KEY,
                {
                    "ts": repr(T0),
                    "actor": "marketer:m",
                    "action": "update",
                    "kind": "store",
                    "object_id": f"hay{i}",
                    "before": "{}",
                    "after": "{}",
                },
            )
        pipe.execute()
    where = AuditFilter(actor="admin:old")
    first = log.query(where, limit=10)
    assert first["items"] == [] and first["next_cursor"] is not None  # read its bound, went on
    second = log.query(where, cursor=first["next_cursor"], limit=10)
    assert [e["object_id"] for e in second["items"]] == ["needle"]
    assert second["next_cursor"] is None
    # A page that fills up on the log's oldest entry has no cursor; one read bound is a page.
    hay0 = log.query(AuditFilter(object_id="hay0"), cursor=first["next_cursor"])["items"][0]
    last = log.query(cursor=hay0["id"], limit=1)
    assert [e["object_id"] for e in last["items"]] == ["needle"] and last["next_cursor"] is None
    bounded = log.query(limit=SCAN_LIMIT + 6)
    assert len(bounded["items"]) == SCAN_LIMIT and bounded["next_cursor"] is not None
    assert log.query(cursor=second["items"][0]["id"]) == {"items": [], "next_cursor": None}
