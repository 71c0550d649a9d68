"""Every endpoint declares its roles, and every role outside the declaration is refused."""

from __future__ import annotations

import re

import pytest

import config
from app import create_app, is_framework_public
from app.auth import PUBLIC, ROLES, declared_roles

CALLERS = ("anonymous", *ROLES)
DUMMY_ID = "st-dummy"

# The policy as reviewed. A new endpoint only has to declare its roles (checked below for every
# rule); an endpoint listed here must keep exactly these roles.
POLICY = {
    "ops.healthz": {PUBLIC},
    "ops.client_config": {PUBLIC},
    "pages.console": {PUBLIC},
    "pages.till": {PUBLIC},
    "pages.studio": {PUBLIC},
    "pages.shopper_app": {PUBLIC},
    "pages.shopper_app_worker": {PUBLIC},
    "pages.shopper_app_manifest": {PUBLIC},
    "pages.vendor": {PUBLIC},
    "ops.readyz": {PUBLIC},
    "ops.metrics": {PUBLIC},
    "auth.signup": {PUBLIC},
    "auth.login": {PUBLIC},
    "auth.guest": {PUBLIC},
    "auth.logout": set(ROLES),
    "auth.me": set(ROLES),
    "auth.erase_me": {"shopper"},
    "auth.get_consent": {"shopper"},
    "auth.put_consent": {"shopper"},
    "stores.create_store": {"marketer", "admin"},
    "stores.list_stores": {"marketer", "admin"},
    "stores.nearby": {"shopper", "marketer", "admin"},
    "stores.store_map": {"marketer", "admin"},
    "stores.import_stores": {"marketer", "admin"},
    "stores.export_geojson": {"marketer", "admin"},
    "stores.get_store": {"staff", "marketer", "admin"},
    "stores.replace_store": {"marketer", "admin"},
    "stores.patch_store": {"marketer", "admin"},
    "stores.delete_store": {"marketer", "admin"},
    "location.post_fix": {"shopper"},
    "location.post_fixes": {"shopper"},
    "location.my_fixes": {"shopper"},
    "location.inside": {"shopper"},
    "location.my_trust": {"shopper"},
    "webhooks.event_types": {"marketer", "admin"},
    "webhooks.list_endpoints": {"marketer", "admin"},
    "webhooks.create_endpoint": {"marketer", "admin"},
    "webhooks.get_endpoint": {"marketer", "admin"},
    "webhooks.update_endpoint": {"marketer", "admin"},
    "webhooks.delete_endpoint": {"marketer", "admin"},
    "webhooks.rotate_secret": {"marketer", "admin"},
    "webhooks.ping": {"marketer", "admin"},
    "webhooks.attempts": {"marketer", "admin"},
    "webhooks.failed": {"marketer", "admin"},
    "webhooks.retry_now": {"marketer", "admin"},
    "campaigns.create_campaign": {"marketer", "admin"},
    "campaigns.list_campaigns": {"marketer", "admin"},
    "campaigns.get_campaign": {"marketer", "admin"},
    "campaigns.patch_campaign": {"marketer", "admin"},
    "campaigns.transition_campaign": {"marketer", "admin"},
    "campaigns.create_offer": {"marketer", "admin"},
    "campaigns.list_offers": {"marketer", "admin"},
    "campaigns.get_offer": {"marketer", "admin"},
    "campaigns.patch_offer": {"marketer", "admin"},
    "campaigns.issue_coupon": {"marketer", "admin"},
    "campaigns.offer_card": {"marketer", "admin"},
    "campaigns.ledger": {"marketer", "admin"},
    "campaigns.analytics": {"marketer", "admin"},
    "campaigns.analytics_csv": {"marketer", "admin"},
    "campaigns.heatmap": {"marketer", "admin"},
    "campaigns.heatmap_points": {"marketer", "admin"},
    "campaigns.get_coupon": {"marketer", "admin"},
    "campaigns.void_coupon": {"marketer", "admin"},
    "wallet.wallet": {"shopper"},
    "wallet.coupon": {"shopper"},
    "wallet.coupon_qr_png": {"shopper"},
    "wallet.coupon_qr_svg": {"shopper"},
    "wallet.coupon_card": {"shopper"},
    "wallet.memberships": {"shopper"},
    "wallet.link_membership": {"shopper"},
    "wallet.unlink_membership": {"shopper"},
    "wallet.programs": {"shopper", "marketer", "admin"},
    "wallet.create_program": {"marketer", "admin"},
    "redemptions.preview": {"staff"},
    "redemptions.redeem": {"staff"},
    "redemptions.void": {"staff", "marketer", "admin"},
    "redemptions.store_redemptions": {"staff", "marketer", "admin"},
    "game.put_game": {"marketer", "admin"},
    "game.get_game": {"marketer", "admin"},
    "game.spawns": {"shopper"},
    "game.catch": {"shopper"},
    "game.my_status": {"shopper"},
    "game.collection": {"shopper"},
    "game.leaderboard": {"shopper", "marketer", "admin"},
    "game.sprite": {PUBLIC},
    "game.strikes": {"marketer", "admin"},
    "game.clear_strikes": {"marketer", "admin"},
    "game.roll": {"marketer", "admin"},
    "streams.create_stream": {"marketer", "admin", "host"},
    "streams.list_streams": {PUBLIC},
    "streams.get_stream": {PUBLIC},
    "streams.patch_stream": {"marketer", "admin", "host"},
    "streams.transition_stream": {"marketer", "admin", "host"},
    "streams.add_product": {"marketer", "admin", "host"},
    "streams.remove_product": {"marketer", "admin", "host"},
    "streams.product_image": {PUBLIC},
    "streams.product_thumb": {PUBLIC},
    "streams.drop_offers": {"marketer", "admin", "host"},
    "streams.report": {"marketer", "admin", "host"},
    "streams.report_csv": {"marketer", "admin", "host"},
}

# The live room's socket events as reviewed: who may connect to each namespace, and who may
# send each event. Admins watch any stream's host console (its state and feedback) but every
# move on it is the hosts'.
HOST_MOVES = (
    "start",
    "end",
    "pin",
    "unpin",
    "sold_out",
    "announce",
    "poll_start",
    "poll_close",
    "drop",
    "delete_comment",
    "pin_comment",
    "answer",
    "mute",
    "ban",
    "slow_mode",
    "banned_words",
)
SOCKET_POLICY = {
    "/host": {
        "connect": {"host", "admin"},
        "state": {"host", "admin"},
        "feedback": {"host", "admin"},
        **{move: {"host"} for move in HOST_MOVES},
    },
    "/live": {
        "connect": {"shopper", "guest"},
        "join": {"shopper", "guest"},
        "leave": {"shopper", "guest"},
        **{e: {"shopper"} for e in ("comment", "like", "vote", "ask", "upvote", "claim")},
    },
}


def _socket_events(namespace_class) -> dict[str, set[str]]:
    """Return {event: roles} of a namespace class's client events, and its connect roles."""
    lifecycle = {"on_connect", "on_disconnect", "on_client_event"}
    events = {
        name[3:]: set(declared_roles(getattr(namespace_class, name)) or ())
        for name in dir(namespace_class)
        if name.startswith("on_") and name not in lifecycle
    }
    return {"connect": set(namespace_class.connect_roles), **events}


def test_live_socket_events_keep_their_reviewed_roles():
    from app.sockets.live import HostNamespace, LiveNamespace

    assert _socket_events(HostNamespace) == SOCKET_POLICY["/host"]
    assert _socket_events(LiveNamespace) == SOCKET_POLICY["/live"]


def _routes() -> list[tuple[str, str, str]]:
    """Return (endpoint, method, url) for every API rule of a freshly built app."""
    # Building an app touches no server: the Redis client connects on first use.
    app = create_app(config.TestConfig(REDIS_URL="redis://127.0.0.1:1/0"))
    routes = []
    for rule in app.url_map.iter_rules():
        if is_framework_public(rule.endpoint):
            continue
        url = re.sub(r"<(?:[^:<>]+:)?[^<>]+>", DUMMY_ID, rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            routes.append((rule.endpoint, method, url))
    app.extensions["redis"].close()
    return sorted(routes)


ROUTES = _routes()


def _id(route: tuple[str, str, str]) -> str:
    return f"{route[1]} {route[2]}"


def _allowed(app, endpoint: str) -> frozenset[str]:
    return declared_roles(app.view_functions[endpoint])


def _headers(auth, caller: str) -> dict:
    if caller == "anonymous":
        return {}
    headers, _ = auth.headers(caller, store_id=DUMMY_ID if caller == "staff" else None)
    return headers


def test_every_rule_is_in_the_matrix(app):
    rules = {r.endpoint for r in app.url_map.iter_rules() if not is_framework_public(r.endpoint)}
    assert rules == {endpoint for endpoint, _, _ in ROUTES}
    assert rules, "no API rules found"


def test_only_docs_and_static_files_skip_the_role_check(app):
    docs = re.compile(
        r"^/(static/|api/(openapi\.json|swagger(/.*)?|static/.*|"
        r"oauth2-redirect\.html)?$)"
    )
    skipped = [rule.rule for rule in app.url_map.iter_rules() if is_framework_public(rule.endpoint)]
    assert "/api/openapi.json" in skipped
    assert [url for url in skipped if not docs.match(url)] == []


@pytest.mark.parametrize("route", ROUTES, ids=_id)
def test_every_endpoint_declares_its_roles(app, route):
    allowed = _allowed(app, route[0])
    assert allowed, f"{route[0]} declares no roles"
    assert allowed <= {*ROLES, PUBLIC}
    assert PUBLIC not in allowed or allowed == {PUBLIC}, "public plus roles is ambiguous"


@pytest.mark.parametrize("endpoint", sorted(POLICY))
def test_reviewed_policy_is_unchanged(app, endpoint):
    assert set(_allowed(app, endpoint)) == POLICY[endpoint]


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("route", ROUTES, ids=_id)
def test_role_matrix(app, client, auth, route, caller):
    endpoint, method, url = route
    allowed = _allowed(app, endpoint)
    # Closed at once: a page is sent from its file (which the response holds open).
    with client.open(url, method=method, headers=_headers(auth, caller)) as response:
        body = response.get_json(silent=True) or {}
    error = body.get("error") or {}
    if PUBLIC in allowed or caller in allowed:
        # Let through: whatever the answer is, it is not the role check.
        assert error.get("code") not in (
            "unauthorized",
            "forbidden_role",
            "undeclared_roles",
            "invalid_token",
            "session_revoked",
        ), body
        return
    expected = (401, "unauthorized") if caller == "anonymous" else (403, "forbidden_role")
    assert (response.status_code, error.get("code")) == expected, body
    assert set(error) >= {"code", "message", "field"}
    assert response.headers["X-Request-ID"]


def test_refusal_comes_before_input_validation(client, auth):
    """A refused caller learns nothing about the input rules or the data."""
    headers, _ = auth.headers("shopper")
    response = client.post("/api/stores", json={"lat": "north"}, headers=headers)
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden_role"
    response = client.get("/api/stores/%20bad%20id", headers=headers)
    assert response.get_json()["error"]["code"] == "forbidden_role"


@pytest.mark.parametrize("caller", CALLERS)
def test_view_without_declared_roles_is_refused(make_app, caller):
    app = make_app()
    app.add_url_rule("/api/throwaway", "throwaway", lambda: {"secret": True})
    client = app.test_client()
    headers = {}
    if caller != "anonymous":
        accounts = app.extensions["accounts"]
        if caller == "guest":
            session = accounts.create_guest()
        else:
            accounts.create_user(
                f"{caller}@example.test",
                "correct-horse-1",
                caller,
                store_id=DUMMY_ID if caller == "staff" else None,
            )
            session = accounts.open_session(accounts.find_by_email(f"{caller}@example.test"))
        headers = {"Authorization": f"Bearer {session['token']}"}
    response = client.get("/api/throwaway", headers=headers)
    assert response.status_code == 403
    error = response.get_json()["error"]
    assert error["code"] == "undeclared_roles"
    assert set(error) >= {"code", "message", "field"}
    assert "secret" not in response.get_data(as_text=True)
