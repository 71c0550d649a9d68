"""Generated requests against a real gunicorn server: every answer conforms to the OpenAPI document.

Schemathesis reads /api/openapi.json (the one the server serves) and sends, per operation, a few
generated requests (valid and invalid) with the token of a role the operation allows. Each
answer must not be a server error and must conform to the document: a documented status, the
documented media type, the documented body schema and the documented headers (Retry-After on
429 and 503). Bounded: a few examples per operation, derandomized (the same cases every run).
"""

from __future__ import annotations

import re
import uuid

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings

import config
from app import create_app
from app.redis_supervisor import EmbeddedRedis
from tests.servers import SECRET_KEY, free_port, shown_on_failure, start_gunicorn

MAX_EXAMPLES = 4
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
)
# Which of the caller's tokens to use when an operation allows several roles.
PREFERENCE = ("marketer", "shopper", "staff", "host", "admin")
STORE = {
    "id": "st-fuzz",
    "name": "Fuzz Store",
    "brand": "Fuzz",
    "city": "Shanghai",
    "lat": 31.2304,
    "lon": 121.4737,
    "fence": {"type": "circle", "radius_m": 80},
}


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """A Redis, a gunicorn server on it, and an in-process helper app that makes accounts."""
    redis = EmbeddedRedis(tmp_path_factory.mktemp("st-redis"), free_port(), appendonly=False)
    redis.start()
    try:
        server = start_gunicorn(redis.url)
        try:
            helper = create_app(
                config.TestConfig(
                    REDIS_URL=redis.url,
                    SECRET_KEY=SECRET_KEY,
                    VAR_DIR=tmp_path_factory.mktemp("st-var"),
                )
            )
            yield server, helper
        finally:
            server.close()
    finally:
        redis.stop()


class Callers:
    """A session per role, made directly in Redis; fresh ones for operations that end them."""

    def __init__(self, helper):
        self.accounts = helper.extensions["accounts"]
        self.geo = helper.extensions["geo"]
        self.helper = helper
        stores = helper.extensions["stores"]
        if stores.get_many([STORE["id"]]) == [None]:
            stores.create(dict(STORE))
        self.sessions = {role: self.session(role) for role in PREFERENCE}

    def session(self, role: str) -> dict:
        email = f"{role}-{uuid.uuid4().hex[:12]}@example.test"
        store_id = STORE["id"] if role == "staff" else None
        user = self.accounts.create_user(email, "correct-horse-1", role, store_id=store_id)
        session = self.accounts.open_session(self.accounts.find_by_email(user["email"]))
        if role == "shopper":
            self.geo.set_consent(session["user"]["id"], True)
        return session

    def headers_for(self, operation) -> dict[str, str]:
        description = operation.definition.raw.get("description", "")
        match = re.match(r"Roles: ([^.]+)\.", description)
        assert match, f"{operation.label} does not say which roles may call it"
        if match.group(1) == "anyone":
            return {}
        allowed = [r.strip() for r in match.group(1).split(",")]
        role = next(r for r in PREFERENCE if r in allowed)
        if operation.label in ("POST /api/auth/logout", "DELETE /api/me"):
            session = self.session(role)  # these end the session (or the account) they use
        else:
            session = self.sessions[role]
        return {"Authorization": f"Bearer {session['token']}"}


@pytest.fixture(scope="module")
def callers(live):
    _, helper = live
    return Callers(helper)


def load_document() -> dict:
    """The OpenAPI document, built by the app offline (no Redis needed) at collection time."""
    offline = create_app(config.TestConfig(REDIS_URL="redis://127.0.0.1:1/0"))
    with offline.test_client() as client:
        return client.get("/api/openapi.json").get_json()


DOCUMENT = load_document()
schema = schemathesis.openapi.from_dict(
    DOCUMENT,
    config=schemathesis.Config.from_dict(
        {
            "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
            "generation": {"with-security-parameters": False},
        }
    ),
)


def test_the_server_serves_the_document_under_test(live):
    server, _ = live
    assert requests.get(server.url + "/api/openapi.json", timeout=10).json() == DOCUMENT
    assert sum(len(item) for item in DOCUMENT["paths"].values()) >= 76


@pytest.fixture
def server_log(request, live):
    server, _ = live
    with shown_on_failure(request, server):
        yield


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_every_answer_conforms_to_the_document(case, live, callers, server_log):
    server, _ = live
    case.call_and_validate(
        base_url=server.url, headers=callers.headers_for(case.operation), timeout=20
    )
