"""The /shopper namespace with the Flask-SocketIO test client (in process, no message queue)."""

from __future__ import annotations

import pytest

from .conftest import T0

STORE = {
    "id": "s1",
    "name": "S",
    "brand": "B",
    "city": "Shanghai",
    "lat": 31.24,
    "lon": 121.48,
    "fence": {"type": "circle", "radius_m": 100},
}
FIX = {"lat": 31.24, "lon": 121.48, "accuracy_m": 5, "recorded_at": T0}


@pytest.fixture
def socketio(app):
    return app.extensions["socketio"]


def connect(socketio, app, client, token):
    return socketio.test_client(
        app, namespace="/shopper", auth={"token": token}, flask_test_client=client
    )


def token_of(headers):
    return headers["Authorization"].split(" ", 1)[1]


def test_connect_needs_a_valid_shopper_token(socketio, app, client, auth):
    assert not socketio.test_client(app, namespace="/shopper").is_connected("/shopper")
    assert not connect(socketio, app, client, "v1.bogus.token").is_connected("/shopper")
    marketer, _ = auth.headers("marketer")
    assert not connect(socketio, app, client, token_of(marketer)).is_connected("/shopper")
    shopper, _ = auth.headers("shopper")
    assert connect(socketio, app, client, token_of(shopper)).is_connected("/shopper")


def test_geofence_events_reach_only_the_shoppers_room(socketio, app, client, auth):
    marketer, _ = auth.headers("marketer")
    assert client.post("/api/stores", json=STORE, headers=marketer).status_code == 201
    alice, alice_user = auth.headers("shopper")
    bob, _ = auth.headers("shopper")
    alice_socket = connect(socketio, app, client, token_of(alice))
    bob_socket = connect(socketio, app, client, token_of(bob))
    alice_socket.get_received("/shopper")
    response = client.post("/api/location/fix", json=FIX, headers=alice)
    assert response.status_code == 200
    received = alice_socket.get_received("/shopper")
    assert [m["name"] for m in received] == ["geofence"]
    event = received[0]["args"][0]
    assert event["kind"] == "enter" and event["store_id"] == "s1"
    assert event["shopper_id"] == alice_user["id"]
    assert bob_socket.get_received("/shopper") == []


def test_location_over_the_socket(socketio, app, client, auth):
    marketer, _ = auth.headers("marketer")
    client.post("/api/stores", json=STORE, headers=marketer)
    shopper, _ = auth.headers("shopper")
    sock = connect(socketio, app, client, token_of(shopper))
    ack = sock.emit(
        "location",
        {"fixes": [FIX, {**FIX, "recorded_at": T0 + 130}]},
        namespace="/shopper",
        callback=True,
    )
    assert [r["verdict"] for r in ack["results"]] == ["ok", "ok"]
    assert [e["kind"] for r in ack["results"] for e in r["events"]] == ["enter", "dwell"]
    assert sock.emit("whoami", namespace="/shopper", callback=True)["role"] == "shopper"


@pytest.mark.parametrize(
    ("event", "payload", "code", "field"),
    [
        (
            "location",
            {"lat": "north", "lon": 1, "accuracy_m": 5, "recorded_at": T0},
            "validation_error",
            "lat",
        ),
        ("location", {**FIX, "altitude": 3}, "unknown_field", "altitude"),
        ("location", "not an object", "invalid_payload", "payload"),
        ("location", {"fixes": []}, "validation_error", "fixes"),
        ("location", {**FIX, "recorded_at": T0 + 86400}, "fix_in_future", "fixes[0].recorded_at"),
        ("location", {"blob": "x" * 20_000}, "payload_too_large", "payload"),
        ("no_such_event", {}, "unknown_event", "event"),
        ("trigger_event", {}, "unknown_event", "event"),
    ],
)
def test_bad_input_gets_an_error_ack_and_keeps_the_connection(
    socketio, app, client, auth, event, payload, code, field
):
    shopper, _ = auth.headers("shopper")
    sock = connect(socketio, app, client, token_of(shopper))
    ack = sock.emit(event, payload, namespace="/shopper", callback=True)
    assert ack["error"]["code"] == code
    assert ack["error"]["field"] == field
    errors = [m for m in sock.get_received("/shopper") if m["name"] == "error"]
    assert errors and errors[0]["args"][0]["event"] == event
    assert sock.is_connected("/shopper")
    assert sock.emit("whoami", namespace="/shopper", callback=True)["role"] == "shopper"


def test_no_fix_over_the_socket_before_consent(socketio, app, client, auth):
    shopper, _ = auth.headers("shopper", consent=False)
    sock = connect(socketio, app, client, token_of(shopper))
    ack = sock.emit("location", FIX, namespace="/shopper", callback=True)
    assert ack["error"]["code"] == "consent_required"


def test_logout_then_connect_is_refused(socketio, app, client, auth):
    shopper, _ = auth.headers("shopper")
    assert client.post("/api/auth/logout", headers=shopper).status_code == 200
    assert not connect(socketio, app, client, token_of(shopper)).is_connected("/shopper")


def test_logout_closes_the_sessions_sockets(socketio, app, client, auth):
    shopper, _ = auth.headers("shopper")
    sock = connect(socketio, app, client, token_of(shopper))
    other, _ = auth.headers("shopper")
    bystander = connect(socketio, app, client, token_of(other))
    assert sock.is_connected("/shopper")
    assert client.post("/api/auth/logout", headers=shopper).status_code == 200
    assert not sock.is_connected("/shopper")
    assert bystander.is_connected("/shopper")


def test_erasure_closes_the_shoppers_sockets(socketio, app, client, auth):
    shopper, _ = auth.headers("shopper")
    sock = connect(socketio, app, client, token_of(shopper))
    assert client.delete("/api/me", headers=shopper).status_code == 200
    assert not sock.is_connected("/shopper")
