"""The error envelope: routing errors, bad JSON, validation, size limits, Redis outages, docs."""

from __future__ import annotations

import io
import json

import pytest
from openapi_spec_validator import validate as validate_spec

import config
from app import create_app
from app.auth import PUBLIC, roles
from app.redis_supervisor import EmbeddedRedis, free_port

from .helpers import assert_error

FIX = {"lat": 31.24, "lon": 121.48, "accuracy_m": 10, "recorded_at": 1_780_000_000}
STORE = {"id": "st-1", "name": "S", "brand": "B", "city": "Shanghai", "lat": 31.24, "lon": 121.48}


@pytest.fixture
def shopper(auth):
    headers, _ = auth.headers("shopper")
    return headers


@pytest.fixture
def marketer(auth):
    headers, _ = auth.headers("marketer")
    return headers


# -- routing ---------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/nope", "/api/nope", "/api/stores/a/b", "/api/me/x"])
def test_unknown_path_is_404(client, path):
    assert_error(client.get(path), 404, "not_found")


@pytest.mark.parametrize(
    "method, path, allowed",
    [
        ("delete", "/api/auth/login", {"POST", "OPTIONS"}),
        ("get", "/api/auth/signup", {"POST", "OPTIONS"}),
        ("post", "/healthz", {"GET", "HEAD", "OPTIONS"}),
        ("put", "/api/stores", {"GET", "HEAD", "POST", "OPTIONS"}),
        ("post", "/api/stores/st-1", {"GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"}),
    ],
)
def test_wrong_method_is_405_with_allow(client, method, path, allowed):
    response = getattr(client, method)(path)
    assert_error(response, 405, "method_not_allowed")
    assert {m.strip() for m in response.headers["Allow"].split(",")} == allowed


# -- bodies ----------------------------------------------------------------------------------
@pytest.mark.parametrize("raw", ["{bad", '{"email": "a@b.cd",}', "{'a': 1}", "\xff", "[1,"])
def test_malformed_json_is_400_naming_the_body(client, raw):
    response = client.post("/api/auth/login", data=raw, content_type="application/json")
    assert_error(response, 400, "malformed_json", "body")


def test_deeply_nested_json_is_malformed_not_a_crash(client):
    response = client.post("/api/auth/login", data="[" * 100_000, content_type="application/json")
    assert_error(response, 400, "malformed_json", "body")


@pytest.mark.parametrize(
    "body, code, field",
    [
        ({**FIX, "lat": "north"}, "validation_error", "lat"),
        ({**FIX, "lon": [1]}, "validation_error", "lon"),
        ({**FIX, "accuracy_m": "ten"}, "validation_error", "accuracy_m"),
        ({**FIX, "recorded_at": "yesterday"}, "validation_error", "recorded_at"),
        ({**FIX, "recorded_at": "2026-05-28T20:00:00"}, "validation_error", "recorded_at"),
        ({**FIX, "recorded_at": True}, "validation_error", "recorded_at"),
        ({**FIX, "mock": "perhaps"}, "validation_error", "mock"),
        ({**FIX, "lat": 91}, "validation_error", "lat"),
        ({**FIX, "lat": -90.0001}, "validation_error", "lat"),
        ({**FIX, "lon": 180.5}, "validation_error", "lon"),
        ({**FIX, "accuracy_m": 0}, "validation_error", "accuracy_m"),
        ({**FIX, "speed_mps": -1}, "validation_error", "speed_mps"),
        ({k: v for k, v in FIX.items() if k != "lon"}, "validation_error", "lon"),
        ({**FIX, "altitude": 10}, "unknown_field", "altitude"),
    ],
)
def test_fix_validation_names_the_field(client, shopper, body, code, field):
    response = client.post("/api/location/fix", json=body, headers=shopper)
    error = assert_error(response, 422, code, field)
    assert error["details"][0]["field"] == field


def test_batch_validation_names_the_nested_field(client, shopper):
    body = {"fixes": [FIX, {**FIX, "lat": "north"}]}
    response = client.post("/api/location/fixes", json=body, headers=shopper)
    assert_error(response, 422, "validation_error", "fixes[1].lat")


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({}, id="no-body"),
        pytest.param({"data": "", "content_type": "application/json"}, id="empty-json"),
        pytest.param({"data": "null", "content_type": "application/json"}, id="null"),
        pytest.param({"json": []}, id="array"),
        pytest.param({"json": [{"email": "a@b.cd", "password": "x"}]}, id="array-of-object"),
        pytest.param({"json": 42}, id="number"),
        pytest.param(
            {
                "data": "email=a@b.cd&password=x",
                "content_type": "application/x-www-form-urlencoded",
            },
            id="form",
        ),
    ],
)
def test_body_that_is_not_an_object_is_422_naming_the_body(client, kwargs):
    assert_error(client.post("/api/auth/login", **kwargs), 422, "validation_error", "body")


def test_oversized_body_is_413(make_app):
    client = make_app(MAX_CONTENT_LENGTH=1000).test_client()
    response = client.post("/api/auth/login", json={"email": "a@b.cd", "password": "x" * 2000})
    assert_error(response, 413, "payload_too_large")
    assert response.headers["X-Request-ID"]
    small = client.post("/api/auth/login", json={"email": "a@b.cd", "password": "x" * 100})
    assert_error(small, 401, "invalid_credentials")


# A chunked body has no Content-Length (werkzeug ignores one sent with Transfer-Encoding:
# chunked); servers that de-chunk it (gunicorn, werkzeug's) set wsgi.input_terminated.
STREAMED = {"wsgi.input_terminated": True}


def streamed_post(client, path, body: bytes, content_type: str, headers=None):
    return client.post(
        path,
        input_stream=io.BytesIO(body),
        content_type=content_type,
        headers={"Transfer-Encoding": "chunked", **(headers or {})},
        environ_overrides=STREAMED,
    )


@pytest.mark.parametrize("size", [1000, 5000, 20_000])
def test_a_streamed_body_over_the_limit_is_413_not_parsed_truncated(make_app, size):
    client = make_app(MAX_CONTENT_LENGTH=1000).test_client()
    body = json.dumps({"email": "a@b.cd", "password": "x" * size}).encode()
    assert_error(
        streamed_post(client, "/api/auth/login", body, "application/json"), 413, "payload_too_large"
    )


def test_a_streamed_body_under_the_limit_is_read_whole(make_app):
    client = make_app(MAX_CONTENT_LENGTH=1000).test_client()
    body = json.dumps({"email": "a@b.cd", "password": "x" * 100}).encode()
    assert_error(
        streamed_post(client, "/api/auth/login", body, "application/json"),
        401,
        "invalid_credentials",
    )


@pytest.mark.parametrize("raw", [b"{bad", b'{"email": "a@b.cd",}', b"[1,", b"\xff"])
def test_malformed_streamed_json_is_400_naming_the_body(client, raw):
    assert_error(
        streamed_post(client, "/api/auth/login", raw, "application/json"),
        400,
        "malformed_json",
        "body",
    )


def test_a_streamed_import_over_the_limit_is_413_not_imported_truncated(make_app):
    app = make_app(MAX_CONTENT_LENGTH=1000)
    accounts = app.extensions["accounts"]
    accounts.create_user("big@example.test", "correct-horse-1", "marketer")
    token = accounts.open_session(accounts.find_by_email("big@example.test"))["token"]
    rows = "".join(f"s{i},Store {i},Acme,Shanghai,31.23,121.47\n" for i in range(60))
    response = streamed_post(
        app.test_client(),
        "/api/stores/import",
        ("id,name,brand,city,lat,lon\n" + rows).encode(),
        "text/csv",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert_error(response, 413, "payload_too_large")
    assert app.extensions["stores"].list()["items"] == []


@pytest.mark.parametrize(
    "exc",
    [
        pytest.param(KeyError("secret-key-name"), id="key-error"),
        pytest.param(RecursionError("maximum recursion depth exceeded"), id="our-recursion"),
    ],
)
def test_unexpected_error_is_a_bare_500_envelope(make_app, exc):
    app = make_app()

    @roles(PUBLIC)
    def explode():
        raise exc

    app.add_url_rule("/api/explode", "explode", explode)
    response = app.test_client().get("/api/explode")
    assert_error(response, 500, "internal_error")
    assert "secret-key-name" not in response.get_data(as_text=True)
    assert response.headers["X-Request-ID"]


def test_oversized_import_is_413(make_app, auth):
    app = make_app(MAX_CONTENT_LENGTH=1000)
    accounts = app.extensions["accounts"]
    accounts.create_user("big@example.test", "correct-horse-1", "marketer")
    token = accounts.open_session(accounts.find_by_email("big@example.test"))["token"]
    response = app.test_client().post(
        "/api/stores/import",
        data="id,name,brand,city,lat,lon\n" + "x" * 2000,
        content_type="text/csv",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert_error(response, 413, "payload_too_large")


# -- request ids -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "method, path, status",
    [
        ("get", "/healthz", 200),
        ("get", "/api/nope", 404),
        ("delete", "/healthz", 405),
        ("get", "/api/me", 401),
        ("post", "/api/auth/login", 422),
        ("get", "/api/openapi.json", 200),
    ],
)
def test_every_response_carries_a_request_id(client, method, path, status):
    response = getattr(client, method)(path)
    assert response.status_code == status
    first = response.headers["X-Request-ID"]
    assert first
    again = getattr(client, method)(path).headers["X-Request-ID"]
    assert again != first
    echoed = getattr(client, method)(path, headers={"X-Request-ID": "trace-123"})
    assert echoed.headers["X-Request-ID"] == "trace-123"


def test_unprintable_request_id_is_replaced(client):
    response = client.get("/healthz", headers={"X-Request-ID": "a\tb"})
    assert response.headers["X-Request-ID"] not in ("", "a\tb")


# -- API documents ---------------------------------------------------------------------------
def test_openapi_document(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    spec = response.get_json()
    assert spec["openapi"].startswith("3.1")
    paths = spec["paths"]
    for path in (
        "/api/stores",
        "/api/stores/{store_id}",
        "/api/stores/nearby",
        "/api/stores/import",
        "/api/location/fix",
        "/api/location/fixes",
    ):
        assert path in paths, path
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "footfall-v1",
    }
    assert paths["/api/stores"]["post"]["security"] == [{"bearer": []}]
    assert paths["/api/location/fix"]["post"]["security"] == [{"bearer": []}]
    assert "text/csv" in paths["/api/stores/import"]["post"]["requestBody"]["content"]
    # The generated document is a valid OpenAPI 3.1 description, not just JSON.
    validate_spec(spec)
    assert not paths["/api/auth/login"]["post"].get("security")
    assert "Roles: marketer, admin." in paths["/api/stores"]["post"]["description"]


def test_swagger_ui_renders(client):
    response = client.get("/api/swagger")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert "swagger" in response.get_data(as_text=True).lower()


# -- Redis outage ----------------------------------------------------------------------------
@pytest.fixture
def outage_server(tmp_path):
    # AOF on, so that the data (our session) survives the restart as in production.
    server = EmbeddedRedis(tmp_path / "outage", free_port(), appendonly=True)
    server.start()
    yield server
    server.stop()


def test_redis_outage_is_503_and_the_app_recovers(outage_server, clock, tmp_path):
    # make_app always passes the session server's URL, so this app is built directly.
    settings = config.TestConfig(REDIS_URL=outage_server.url, VAR_DIR=tmp_path / "var")
    app = create_app(settings, clock=clock)
    try:
        _outage_and_recovery(app, outage_server)
    finally:
        app.extensions["redis"].close()


def _outage_and_recovery(app, outage_server) -> None:
    accounts = app.extensions["accounts"]
    accounts.create_user("ops@example.test", "correct-horse-1", "marketer")
    token = accounts.open_session(accounts.find_by_email("ops@example.test"))["token"]
    headers = {"Authorization": f"Bearer {token}"}
    client = app.test_client()
    assert client.get("/readyz").status_code == 200
    assert client.get("/api/me", headers=headers).status_code == 200

    outage_server.stop()
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["redis"] is False
    assert ready.get_json()["error"]["code"] == "service_unavailable"
    assert ready.headers["Retry-After"] == str(app.config["RETRY_AFTER_S"])
    for _ in range(2):  # the second call must not find a broken pooled connection either
        response = client.get("/api/me", headers=headers)
        assert_error(response, 503, "service_unavailable")
        assert response.headers["Retry-After"] == str(app.config["RETRY_AFTER_S"])
        assert response.headers["X-Request-ID"]
    assert_error(client.get("/api/stores", headers=headers), 503, "service_unavailable")
    assert client.get("/healthz").status_code == 200  # liveness needs no Redis

    outage_server.start()
    assert client.get("/readyz").status_code == 200
    me = client.get("/api/me", headers=headers)
    assert me.status_code == 200
    assert me.get_json()["email"] == "ops@example.test"
    assert client.get("/api/stores", headers=headers).status_code == 200


# -- no client input is a 500 ----------------------------------------------------------------
DEEP_ARRAY = "[" * 50_000 + "]" * 50_000
DEEP_OBJECT = '{"a":' * 50_000 + "1" + "}" * 50_000
GARBAGE = {
    "null": "null",
    "empty-string": '""',
    "json-in-a-string": json.dumps(json.dumps({"email": "a@b.cd", "password": "x" * 8})),
    "array": "[]",
    "object": "{}",
    "true": "true",
    "inf": "1e309",
    "-inf": "-1e309",
    "NaN": "NaN",
    "Infinity": '{"lat": Infinity, "lon": -Infinity, "radius_m": NaN}',
    "tiny": '{"lat": 1e-400, "lon": -1e-400, "accuracy_m": 1e-400}',
    "long-int": '{"lat": ' + "9" * 5000 + "}",
    "big-int": json.dumps(
        {k: 10**400 for k in ("lat", "lon", "accuracy_m", "recorded_at", "speed_mps", "radius_m")}
    ),
    "deep-array": DEEP_ARRAY,
    "deep-object": DEEP_OBJECT,
    "deep-field": json.dumps({"fence": {"type": "circle"}, "name": "x"})[:-1]
    + ', "opening_hours": '
    + DEEP_OBJECT
    + "}",
    "deep-but-parsable": json.dumps({**STORE, "fence": {"type": "Polygon"}})[:-2]
    + ', "coordinates": '
    + "[" * 900
    + "]" * 900
    + '}, "opening_hours": '
    + '{"a":' * 900
    + "1"
    + "}" * 900
    + "}",
    "csv-deep-cell": 'name,brand,city,lat,lon,fence\nS,B,C,1,2,"' + "[" * 50_000 + '"\n',
    "csv-huge-cell": 'name,brand,city,lat,lon,fence\nS,B,C,1,2,"' + "x" * 200_000 + '"\n',
    "csv-ragged": 'name,brand,city,lat,lon\nS,B\nS,B,C,1,2,3,4\n\x00,\r\r\n"',
    "huge-string": json.dumps({k: "x" * 1_000_000 for k in ("email", "password", "name")}),
    "unicode": json.dumps(
        {
            "email": "ünïcødé@例え.テスト",
            "password": "🔑" * 8,
            "name": "店\u0000\u202e",
            "brand": "\ud800",
            "city": "\U0010ffff",
            "lat": "北",
            "location": "是",
        }
    ),
    "lone-surrogate": '{"email": "\\ud800@example.test", "password": "\\udfff\\udfff\\udfff1234"}',
    "bom": "\ufeff" + json.dumps({"email": "a@b.cd", "password": "x" * 8}),
    "invalid-utf8": b'{"email": "\xff\xfe@example.test", "password": "\xc3\x28aaaaaaaa"}',
    "operators": json.dumps(
        {
            "email": {"$gt": ""},
            "password": {"$ne": None},
            "lat": {"$gt": 0},
            "fixes": {"0": FIX},
            "location": [True],
        }
    ),
    "wrong-shapes": json.dumps(
        {
            "fixes": [None, [], 1, "x", {}],
            "fence": [],
            "opening_hours": [],
            "lat": [],
            "lon": {},
            "name": 1,
            "brand": None,
        }
    ),
    "extreme-times": json.dumps(
        {
            "fixes": [
                {**FIX, "recorded_at": t}
                for t in (
                    1e308,
                    -1e308,
                    0,
                    -62135596800,
                    253402300800,
                    "0001-01-01T00:00:00+14:00",
                    "9999-12-31T23:59:59-14:00",
                )
            ]
        }
    ),
    "extreme-store": json.dumps(
        {
            **STORE,
            "lat": 85,
            "lon": 180,
            "opening_hours": {
                "tz": "Etc/GMT-14",
                "weekly": {"mon": [["00:00", "24:00"]]},
                "closed_dates": ["9999-12-31", "0001-01-01"],
            },
            "fence": {
                "type": "MultiPolygon",
                "coordinates": [
                    [[[179.99, 84.99], [-179.99, 84.99], [-179.99, 85.0], [179.99, 84.99]]]
                ],
            },
        }
    ),
    "weird-fences": json.dumps(
        {
            **STORE,
            "fence": {
                "type": "Polygon",
                "coordinates": [[[1e308, 1e308], [-1e308, 1e308], [0, 0], [1e308, 1e308]]],
            },
        }
    ),
    "circle-extremes": json.dumps(
        {**STORE, "fence": {"type": "circle", "radius_m": 1e308, "center": [1e308, -1e308]}}
    ),
    "feature-collection": json.dumps(
        {
            "type": "FeatureCollection",
            "features": [
                None,
                {"type": "Feature"},
                {"type": "Feature", "geometry": {"type": "Point"}},
                {
                    "type": "Feature",
                    "geometry": {"type": "Point", "coordinates": ["a", None]},
                    "properties": [],
                },
                {
                    "type": "Feature",
                    "geometry": {"type": "Point", "coordinates": [1e308, 1e308]},
                    "properties": {
                        "name": "x",
                        "brand": "y",
                        "city": "z",
                        "fence": DEEP_ARRAY[:200],
                    },
                },
            ],
        }
    ),
}


def _json_endpoints(client, auth) -> list[tuple[str, str, dict]]:
    shopper, _ = auth.headers("shopper")
    marketer, _ = auth.headers("marketer")
    assert client.post("/api/stores", json=STORE, headers=marketer).status_code == 201
    return [
        ("post", "/api/auth/signup", {}),
        ("post", "/api/auth/login", {}),
        ("put", "/api/me/consent", shopper),
        ("post", "/api/location/fix", shopper),
        ("post", "/api/location/fixes", shopper),
        ("post", "/api/stores", marketer),
        ("put", "/api/stores/st-1", marketer),
        ("patch", "/api/stores/st-1", marketer),
        ("post", "/api/stores/import", marketer),
        ("post", "/api/stores/import?format=geojson", marketer),
    ]


@pytest.mark.parametrize("name", list(GARBAGE))
def test_garbage_bodies_never_cause_a_500(client, auth, name):
    raw = GARBAGE[name]
    data = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")
    failures = []
    for method, path, headers in _json_endpoints(client, auth):
        for content_type in ("application/json", "application/geo+json", "text/csv"):
            if content_type != "application/json" and "/import" not in path:
                continue
            response = getattr(client, method)(
                path, data=data, content_type=content_type, headers=headers
            )
            if response.status_code >= 500:
                failures.append((method, path, content_type, response.status_code))
            elif response.status_code >= 400:
                assert {"code", "message", "field"} <= set(response.get_json()["error"])
    assert failures == []


@pytest.mark.parametrize(
    "path",
    [
        "/api/stores/nearby?lat=nan&lon=0",
        "/api/stores/nearby?lat=inf&lon=-inf",
        "/api/stores/nearby?lat=1e309&lon=1",
        "/api/stores/nearby?lat=31&lon=121&radius_m=-1",
        "/api/stores/nearby?lat=31&lon=121&limit=" + "9" * 5000,
        "/api/stores/nearby?lat=31&lon=121&open_now=perhaps",
        "/api/stores/nearby?lat=31&lat=32&lon=121",
        "/api/stores/nearby?lat=%00&lon=%ff",
        "/api/stores/nearby",
        "/api/stores?limit=0",
        "/api/stores?limit=-5&cursor=%00",
        "/api/stores?cursor=" + "z" * 5000,
        "/api/stores?city=" + "北" * 200,
        "/api/stores?bogus=1",
        "/api/stores/%00",
        "/api/stores/" + "a" * 5000,
        "/api/stores/..%2F..%2Fetc",
        "/api/stores/店",
        "/api/stores/export.geojson?city=%ff%fe",
    ],
)
def test_garbage_queries_never_cause_a_500(client, auth, path):
    marketer, _ = auth.headers("marketer")
    response = client.get(path, headers=marketer)
    assert response.status_code < 500, response.get_data(as_text=True)
    if response.status_code >= 400:
        assert {"code", "message", "field"} <= set(response.get_json()["error"])
