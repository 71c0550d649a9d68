"""Accounts: sign-up, sign-in, tokens, sessions, login throttling, the CLI, erasure, consent."""

from __future__ import annotations

import base64
import json

import pytest

from app.auth import TokenSigner
from geo import keys

from .helpers import assert_error, bearer

PASSWORD = "correct-horse-1"


def login(client, email: str, password: str = PASSWORD, **kwargs):
    return client.post("/api/auth/login", json={"email": email, "password": password}, **kwargs)


# -- sign-up ---------------------------------------------------------------------------------
def test_signup_returns_a_working_token(client):
    response = client.post(
        "/api/auth/signup",
        json={"email": "ann@example.test", "password": PASSWORD, "display_name": "Ann"},
    )
    assert response.status_code == 201, response.get_json()
    session = response.get_json()
    assert session["token_type"] == "Bearer"
    assert session["user"]["role"] == "shopper"
    assert session["user"]["store_id"] is None
    assert "password" not in session["user"]

    me = client.get("/api/me", headers=bearer(session["token"]))
    assert me.status_code == 200
    assert me.get_json() == {
        "id": session["user"]["id"],
        "email": "ann@example.test",
        "role": "shopper",
        "display_name": "Ann",
        "store_id": None,
    }


def test_signup_normalizes_the_email(client):
    response = client.post(
        "/api/auth/signup", json={"email": "  Bob@Example.TEST ", "password": PASSWORD}
    )
    assert response.status_code == 201
    assert response.get_json()["user"]["email"] == "bob@example.test"
    assert login(client, "BOB@example.test").status_code == 200


@pytest.mark.parametrize("second", ["dup@example.test", "DUP@example.test", " dup@example.test"])
def test_signup_duplicate_email_is_a_conflict(client, auth, second):
    auth.signup("dup@example.test")
    response = client.post("/api/auth/signup", json={"email": second, "password": PASSWORD})
    assert_error(response, 409, "email_taken", "email")


@pytest.mark.parametrize(
    "password, code",
    [
        ("short", "validation_error"),
        ("1234567", "validation_error"),
        ("", "validation_error"),
        ("x" * 257, "validation_error"),
        (12345678, "validation_error"),
        (None, "validation_error"),
    ],
)
def test_signup_refuses_weak_passwords(client, password, code):
    response = client.post(
        "/api/auth/signup", json={"email": "weak@example.test", "password": password}
    )
    assert_error(response, 422, code, "password")


@pytest.mark.parametrize(
    "email, code",
    [
        ("not-an-email", "invalid_email"),
        ("a@b", "invalid_email"),
        ("@example.test", "invalid_email"),
        ("two words@example.test", "invalid_email"),
        ("a@@example.test", "invalid_email"),
        ("ab", "validation_error"),
        ("", "validation_error"),
        (42, "validation_error"),
        ("x" * 250 + "@example.test", "validation_error"),
    ],
)
def test_signup_refuses_bad_emails(client, email, code):
    response = client.post("/api/auth/signup", json={"email": email, "password": PASSWORD})
    assert_error(response, 422, code, "email")


def test_signup_throttled_per_address(make_app):
    client = make_app(SIGNUP_IP_MAX=2).test_client()
    for n in range(2):
        response = client.post(
            "/api/auth/signup", json={"email": f"s{n}@example.test", "password": PASSWORD}
        )
        assert response.status_code == 201
    response = client.post(
        "/api/auth/signup", json={"email": "s9@example.test", "password": PASSWORD}
    )
    assert_error(response, 429, "rate_limited")
    assert int(response.headers["Retry-After"]) > 0


# -- sign-in ---------------------------------------------------------------------------------
def test_login_ok(client, auth):
    user = auth.signup("carol@example.test")["user"]
    response = login(client, "carol@example.test")
    assert response.status_code == 200
    session = response.get_json()
    assert session["user"] == user
    assert client.get("/api/me", headers=bearer(session["token"])).status_code == 200


def test_wrong_password_and_unknown_email_get_the_same_answer(client, auth):
    auth.signup("dave@example.test")
    wrong = login(client, "dave@example.test", "wrong-password")
    unknown = login(client, "nobody@example.test")
    assert_error(wrong, 401, "invalid_credentials")
    assert_error(unknown, 401, "invalid_credentials")
    assert wrong.get_json() == unknown.get_json()


@pytest.mark.parametrize(
    "body, status, code, field",
    [
        ({"email": "e@example.test"}, 422, "validation_error", "password"),
        ({"password": PASSWORD}, 422, "validation_error", "email"),
        ({"email": "e@example.test", "password": ""}, 422, "validation_error", "password"),
        ({"email": "nope", "password": PASSWORD}, 422, "invalid_email", "email"),
        (
            {"email": "e@example.test", "password": PASSWORD, "remember": True},
            422,
            "unknown_field",
            "remember",
        ),
    ],
)
def test_login_input_validation(client, body, status, code, field):
    assert_error(client.post("/api/auth/login", json=body), status, code, field)


# -- tokens ----------------------------------------------------------------------------------
def test_token_expires_with_the_clock(app, client, auth, clock):
    headers, _ = auth.headers("shopper")
    assert client.get("/api/me", headers=headers).status_code == 200
    clock.advance(app.config["TOKEN_TTL_S"] - 1)
    assert client.get("/api/me", headers=headers).status_code == 200
    clock.advance(1)
    assert_error(client.get("/api/me", headers=headers), 401, "token_expired")


def _reencode(token: str, **changes) -> str:
    """Change payload fields of a token and keep its old signature."""
    version, body, sig = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload.update(changes)
    raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    return f"{version}.{base64.urlsafe_b64encode(raw).rstrip(b'=').decode()}.{sig}"


def _flip_last(text: str) -> str:
    return text[:-1] + ("A" if text[-1] != "A" else "B")


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(_flip_last, id="signature"),
        pytest.param(lambda t: _reencode(t, r="admin"), id="role-escalation"),
        pytest.param(lambda t: _reencode(t, exp=4_000_000_000), id="extended-expiry"),
        pytest.param(lambda t: "v2" + t[2:], id="version"),
        pytest.param(lambda t: t.rsplit(".", 1)[0], id="no-signature"),
        pytest.param(lambda t: t + ".x", id="extra-part"),
        pytest.param(lambda t: "garbage", id="garbage"),
        pytest.param(lambda t: "v1.%%%.%%%", id="bad-base64"),
    ],
)
def test_tampered_tokens_are_refused(client, auth, tamper):
    token = auth.signup()["token"]
    assert_error(client.get("/api/me", headers=bearer(tamper(token))), 401, "invalid_token")


def test_token_signed_with_another_key_is_refused(client, auth):
    user = auth.signup()["user"]
    forged = TokenSigner("some-other-secret").sign(
        {"u": user["id"], "r": "admin", "s": None, "sid": "x", "iat": 0, "exp": 4_000_000_000}
    )
    assert_error(client.get("/api/me", headers=bearer(forged)), 401, "invalid_token")


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer    ", "Token abc"])
def test_malformed_authorization_header(client, header):
    assert_error(client.get("/api/me", headers={"Authorization": header}), 401, "invalid_token")


def test_anonymous_needs_to_sign_in(client):
    assert_error(client.get("/api/me"), 401, "unauthorized")


# -- sign-out --------------------------------------------------------------------------------
def test_logout_revokes_only_this_token(client, auth):
    auth.signup("erin@example.test")
    first = login(client, "erin@example.test").get_json()["token"]
    second = login(client, "erin@example.test").get_json()["token"]
    response = client.post("/api/auth/logout", headers=bearer(first))
    assert response.status_code == 200
    assert response.get_json() == {"status": "signed_out"}
    assert_error(client.get("/api/me", headers=bearer(first)), 401, "session_revoked")
    assert_error(client.post("/api/auth/logout", headers=bearer(first)), 401, "session_revoked")
    assert client.get("/api/me", headers=bearer(second)).status_code == 200


# -- login throttling ------------------------------------------------------------------------
def test_login_rate_limited_per_account(app, client, auth, clock):
    auth.signup("frank@example.test")
    limit = app.config["LOGIN_MAX_ATTEMPTS"]
    for _ in range(limit):
        assert_error(
            login(client, "frank@example.test", "wrong-password"), 401, "invalid_credentials"
        )
    # Locked out: even the right password is refused until the window passes.
    response = login(client, "Frank@Example.test")
    assert_error(response, 429, "rate_limited")
    assert 0 < int(response.headers["Retry-After"]) <= app.config["LOGIN_WINDOW_S"]
    # Another account from the same address is not affected.
    auth.signup("grace@example.test")
    assert login(client, "grace@example.test").status_code == 200


def test_successful_login_resets_the_account_counter(app, client, auth):
    auth.signup("hank@example.test")
    limit = app.config["LOGIN_MAX_ATTEMPTS"]
    for _ in range(limit - 1):
        login(client, "hank@example.test", "wrong-password")
    assert login(client, "hank@example.test").status_code == 200
    for _ in range(limit - 1):
        login(client, "hank@example.test", "wrong-password")
    assert login(client, "hank@example.test").status_code == 200


def test_login_rate_limited_per_address(make_app):
    client = make_app(LOGIN_IP_MAX_ATTEMPTS=3).test_client()
    for n in range(3):
        assert_error(login(client, f"user{n}@example.test"), 401, "invalid_credentials")
    response = login(client, "user9@example.test")
    assert_error(response, 429, "rate_limited")
    assert int(response.headers["Retry-After"]) > 0
    # Another address is still served.
    other = login(client, "user9@example.test", environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert_error(other, 401, "invalid_credentials")


# -- the create-user command -----------------------------------------------------------------
def _create_store(app, store_id: str = "st-cli") -> None:
    app.extensions["stores"].create(
        {
            "id": store_id,
            "name": "CLI store",
            "brand": "B",
            "city": "Shanghai",
            "lat": 31.23,
            "lon": 121.47,
        }
    )


def test_cli_creates_a_marketer_with_the_password_from_the_environment(
    client, runner, redis_client
):
    result = runner.invoke(
        args=["create-user", "Mia@Example.test", "--role", "marketer"],
        env={"FOOTFALL_NEW_PASSWORD": PASSWORD},
    )
    assert result.exit_code == 0, result.output
    assert "created marketer mia@example.test" in result.output

    response = login(client, "mia@example.test")
    assert response.status_code == 200
    user = response.get_json()["user"]
    assert user["role"] == "marketer"
    # Stored as an argon2 hash, never the password itself.
    stored = redis_client.hget(f"user:{{u:{user['id']}}}", "password")
    assert stored.startswith("$argon2")
    assert PASSWORD not in redis_client.hgetall(f"user:{{u:{user['id']}}}").values()


def test_cli_creates_staff_for_an_existing_store(app, client, runner):
    _create_store(app)
    result = runner.invoke(
        args=[
            "create-user",
            "till@example.test",
            "--role",
            "staff",
            "--store",
            "st-cli",
            "--password",
            PASSWORD,
        ]
    )
    assert result.exit_code == 0, result.output
    user = login(client, "till@example.test").get_json()["user"]
    assert user["role"] == "staff"
    assert user["store_id"] == "st-cli"


@pytest.mark.parametrize(
    "args, message",
    [
        (["x@example.test", "--role", "staff"], "store_required"),
        (["x@example.test", "--role", "staff", "--store", "st-nope"], "no store 'st-nope'"),
        (["x@example.test", "--role", "marketer", "--store", "st-cli"], "store_not_allowed"),
        (["x@example.test", "--role", "wizard"], "Invalid value for '--role'"),
        (["not-an-email", "--role", "host"], "invalid_email"),
        (["x@example.test", "--role", "host", "--password", "short"], "weak_password"),
        (["dup@example.test", "--role", "admin"], "email_taken"),
    ],
)
def test_cli_refusals(app, auth, runner, args, message):
    _create_store(app)
    auth.signup("dup@example.test")
    if "--password" not in args:
        args = [*args, "--password", PASSWORD]
    result = runner.invoke(args=["create-user", *args])
    assert result.exit_code != 0
    assert message in result.output


def test_signup_stores_an_argon2_hash(auth, redis_client):
    user = auth.signup(password=PASSWORD)["user"]
    assert redis_client.hget(f"user:{{u:{user['id']}}}", "password").startswith("$argon2")


# -- erasure ---------------------------------------------------------------------------------
def test_erase_me_removes_the_account_and_location_data(app, client, auth, clock, redis_client):
    marketer, _ = auth.headers("marketer")
    store = {
        "id": "st-erase",
        "name": "S",
        "brand": "B",
        "city": "Shanghai",
        "lat": 31.2400,
        "lon": 121.4800,
        "fence": {"type": "circle", "radius_m": 100},
    }
    assert client.post("/api/stores", json=store, headers=marketer).status_code == 201
    session = auth.signup("ivy@example.test")
    headers, user_id = bearer(session["token"]), session["user"]["id"]
    consent = client.put("/api/me/consent", json={"location": True}, headers=headers)
    assert consent.status_code == 200
    fix = {"lat": 31.2400, "lon": 121.4800, "accuracy_m": 10, "recorded_at": clock.now()}
    assert client.post("/api/location/fix", json=fix, headers=headers).status_code == 200
    personal = f"{keys.shopper(user_id)}*"
    assert list(redis_client.scan_iter(match=personal)), (
        "the fix should have left location state to erase"
    )

    response = client.delete("/api/me", headers=headers)
    assert response.status_code == 200
    assert response.get_json() == {"status": "erased"}

    assert list(redis_client.scan_iter(match=personal)) == []
    assert list(redis_client.scan_iter(match=f"*{{u:{user_id}}}*")) == []
    assert redis_client.get("user:email:ivy@example.test") is None
    assert_error(client.get("/api/me", headers=headers), 401, "session_revoked")
    assert_error(login(client, "ivy@example.test"), 401, "invalid_credentials")
    # The address is free again.
    assert (
        client.post(
            "/api/auth/signup", json={"email": "ivy@example.test", "password": PASSWORD}
        ).status_code
        == 201
    )


def test_erase_me_is_for_shoppers(client, auth):
    headers, _ = auth.headers("marketer")
    assert_error(client.delete("/api/me", headers=headers), 403, "forbidden_role")
    assert client.get("/api/me", headers=headers).status_code == 200


# -- consent ---------------------------------------------------------------------------------
def test_consent_get_and_put(client, auth, clock):
    headers = bearer(auth.signup()["token"])
    assert client.get("/api/me/consent", headers=headers).get_json() == {
        "location": False,
        "updated_at": None,
    }
    fix = {"lat": 31.24, "lon": 121.48, "accuracy_m": 10, "recorded_at": clock.now()}
    assert_error(
        client.post("/api/location/fix", json=fix, headers=headers),
        403,
        "consent_required",
        "consent",
    )

    response = client.put("/api/me/consent", json={"location": True}, headers=headers)
    assert response.status_code == 200
    assert response.get_json() == {"location": True, "updated_at": clock.now()}
    assert client.get("/api/me/consent", headers=headers).get_json()["location"] is True
    assert client.post("/api/location/fix", json=fix, headers=headers).status_code == 200
    assert client.get("/api/location/fixes", headers=headers).get_json()["items"]

    clock.advance(60)
    response = client.put("/api/me/consent", json={"location": False}, headers=headers)
    assert response.get_json() == {"location": False, "updated_at": clock.now()}
    # Withdrawing consent erases the raw fixes kept so far.
    assert client.get("/api/location/fixes", headers=headers).get_json()["items"] == []
    assert_error(
        client.post("/api/location/fix", json=fix, headers=headers),
        403,
        "consent_required",
        "consent",
    )


@pytest.mark.parametrize(
    "body, code, field",
    [
        ({}, "validation_error", "location"),
        ({"location": "maybe"}, "validation_error", "location"),
        ({"location": None}, "validation_error", "location"),
        ({"location": True, "marketing": True}, "unknown_field", "marketing"),
        ([], "validation_error", "body"),
    ],
)
def test_consent_input_validation(client, auth, body, code, field):
    headers = bearer(auth.signup()["token"])
    assert_error(client.put("/api/me/consent", json=body, headers=headers), 422, code, field)


@pytest.mark.parametrize("role", ["staff", "marketer", "host", "admin"])
def test_consent_is_for_shoppers(client, auth, role):
    headers, _ = auth.headers(role, store_id="st-1" if role == "staff" else None)
    assert_error(client.get("/api/me/consent", headers=headers), 403, "forbidden_role")


# -- non-ASCII tokens --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "token",
    [
        "v1.eyJ1IjoiYSJ9.sig\u00e9",  # reached compare_digest on str: a TypeError, a 500
        "v1.eyJ1IjoiYSJ9\u00ff.c2ln",
        "\u00e9",
        "v1.\u00e9.\u00e9",
    ],
)
def test_a_non_ascii_bearer_token_is_a_401_envelope(client, token):
    response = client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert_error(response, 401, "invalid_token")


def test_a_non_ascii_socket_token_is_refused(app, client):
    socketio = app.extensions["socketio"]
    for query in ("token=v1.eyJ1IjoiYSJ9.sig%C3%A9", "token=%C3%A9.%C3%A9.%C3%A9"):
        sock = socketio.test_client(
            app, namespace="/shopper", query_string=query, flask_test_client=client
        )
        assert not sock.is_connected("/shopper")
