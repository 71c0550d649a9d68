"""Stores and fences through the API: CRUD, paging, nearby, validation, staff scope, export."""

from __future__ import annotations

import math

import pytest
from geopy.distance import geodesic

from geo.geometry import geodesic_m

from .helpers import assert_error

CENTER = (31.2300, 121.4700)  # lat, lon: People's Square, Shanghai


def store(store_id: str = "st-1", **fields) -> dict:
    body = {
        "id": store_id,
        "name": f"Store {store_id}",
        "brand": "Acme",
        "city": "Shanghai",
        "lat": CENTER[0],
        "lon": CENTER[1],
        "address": "1 Nanjing Rd",
    }
    body.update(fields)
    return body


def offset(distance_m: float, bearing: float, origin=CENTER) -> tuple[float, float]:
    """Return (lat, lon) at a geodesic distance and bearing from the origin."""
    point = geodesic(meters=distance_m).destination(origin, bearing)
    return point.latitude, point.longitude


@pytest.fixture
def marketer(auth):
    headers, _ = auth.headers("marketer")
    return headers


@pytest.fixture
def post_store(client, marketer):
    def post(body: dict) -> dict:
        response = client.post("/api/stores", json=body, headers=marketer)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return post


# -- CRUD ------------------------------------------------------------------------------------
def test_store_crud(client, marketer, clock):
    created = client.post("/api/stores", json=store(), headers=marketer)
    assert created.status_code == 201
    body = created.get_json()
    assert body["id"] == "st-1"
    assert body["fence"] == {"type": "circle", "radius_m": 100, "center": [CENTER[1], CENTER[0]]}
    assert body["opening_hours"] is None
    assert body["updated_at"] == clock.now()
    assert client.get("/api/stores/st-1", headers=marketer).get_json() == body

    clock.advance(10)
    replaced = client.put(
        "/api/stores/st-1",
        headers=marketer,
        json={
            "name": "Renamed",
            "brand": "Acme",
            "city": "Hangzhou",
            "lat": 30.25,
            "lon": 120.16,
            "opening_hours": {"tz": "Asia/Shanghai", "always": True},
        },
    )
    assert replaced.status_code == 200, replaced.get_json()
    body = replaced.get_json()
    assert (body["name"], body["city"], body["address"]) == ("Renamed", "Hangzhou", "")
    assert body["fence"]["center"] == [120.16, 30.25]
    assert body["updated_at"] == clock.now()

    patched = client.patch("/api/stores/st-1", json={"address": "2 West Lake Rd"}, headers=marketer)
    assert patched.status_code == 200
    assert patched.get_json() == {**body, "address": "2 West Lake Rd"}
    assert client.get("/api/stores/st-1", headers=marketer).get_json() == patched.get_json()

    deleted = client.delete("/api/stores/st-1", headers=marketer)
    assert deleted.status_code == 200
    assert deleted.get_json() == {"status": "deleted", "id": "st-1"}
    for method in ("get", "delete"):
        assert_error(
            getattr(client, method)("/api/stores/st-1", headers=marketer),
            404,
            "store_not_found",
            "store_id",
        )
    assert_error(
        client.patch("/api/stores/st-1", json={"name": "x"}, headers=marketer),
        404,
        "store_not_found",
        "store_id",
    )
    assert client.get("/api/stores", headers=marketer).get_json() == {
        "items": [],
        "next_cursor": None,
        "total": 0,
    }
    nearby = client.get("/api/stores/nearby?lat=30.25&lon=120.16", headers=marketer)
    assert nearby.get_json() == {"items": [], "count": 0}


def test_create_without_id_generates_one(client, marketer):
    body = store()
    del body["id"]
    response = client.post("/api/stores", json=body, headers=marketer)
    assert response.status_code == 201
    store_id = response.get_json()["id"]
    assert store_id.startswith("st-")
    assert client.get(f"/api/stores/{store_id}", headers=marketer).status_code == 200


def test_duplicate_id_is_a_conflict(client, marketer, post_store):
    post_store(store())
    response = client.post("/api/stores", json=store(name="Other"), headers=marketer)
    assert_error(response, 409, "store_exists", "id")
    assert client.get("/api/stores/st-1", headers=marketer).get_json()["name"] == "Store st-1"


def test_put_refuses_a_different_id_and_a_missing_store(client, marketer, post_store):
    post_store(store())
    assert_error(
        client.put("/api/stores/st-1", json=store("st-2"), headers=marketer),
        422,
        "validation_error",
        "id",
    )
    assert_error(
        client.put("/api/stores/st-9", json=store("st-9"), headers=marketer),
        404,
        "store_not_found",
        "store_id",
    )
    assert client.get("/api/stores/st-9", headers=marketer).status_code == 404


def test_patch_moves_a_circle_around_the_store_with_it(client, marketer, post_store):
    post_store(store())
    response = client.patch("/api/stores/st-1", json={"lat": 31.24}, headers=marketer)
    assert response.status_code == 200
    assert response.get_json()["fence"]["center"] == [CENTER[1], 31.24]
    # A circle drawn somewhere else stays where it was drawn.
    post_store(
        store("st-2", fence={"type": "circle", "radius_m": 50, "center": [121.4705, 31.2305]})
    )
    response = client.patch("/api/stores/st-2", json={"lat": 31.233}, headers=marketer)
    assert response.get_json()["fence"]["center"] == [121.4705, 31.2305]
    # ... and the store cannot move away from it (more than FENCE_MAX_OFFSET_M).
    response = client.patch("/api/stores/st-2", json={"lat": 31.24}, headers=marketer)
    assert_error(response, 422, "invalid_fence", "fence.center")


def test_patch_city_moves_the_city_index(client, marketer, post_store):
    post_store(store())
    client.patch("/api/stores/st-1", json={"city": "Suzhou", "brand": "Bolt"}, headers=marketer)
    listed = client.get("/api/stores?city=shanghai", headers=marketer).get_json()
    assert listed["items"] == [] and listed["total"] == 0
    assert [
        s["id"] for s in client.get("/api/stores?city=suzhou", headers=marketer).get_json()["items"]
    ] == ["st-1"]
    assert client.get("/api/stores?brand=acme", headers=marketer).get_json()["total"] == 0


@pytest.mark.parametrize(
    "patch, code, field",
    [
        ({"lat": 91}, "validation_error", "lat"),
        ({"lat": None}, "validation_error", "lat"),
        ({"name": ""}, "validation_error", "name"),
        ({"id": "st-2"}, "unknown_field", "id"),
        ({"fence": {"type": "circle", "radius_m": 19}}, "invalid_fence", "fence.radius_m"),
        (
            {"opening_hours": {"tz": "Nowhere/Else", "always": True}},
            "invalid_hours",
            "opening_hours.tz",
        ),
    ],
)
def test_patch_validation(client, marketer, post_store, patch, code, field):
    post_store(store())
    assert_error(client.patch("/api/stores/st-1", json=patch, headers=marketer), 422, code, field)
    assert client.get("/api/stores/st-1", headers=marketer).get_json()["lat"] == CENTER[0]


# -- listing ---------------------------------------------------------------------------------
CITIES = ["Shanghai", "Hangzhou", "Beijing"]
BRANDS = ["Acme", "Bolt"]


@pytest.fixture
def many_stores(post_store):
    """25 stores across three cities and two brands, created in a scrambled order."""
    made = {}
    for n in sorted(range(25), key=lambda n: (n * 7) % 25):
        body = store(
            f"st-{n:02d}", city=CITIES[n % 3], brand=BRANDS[n % 2], lat=CENTER[0] + n * 0.001
        )
        made[body["id"]] = post_store(body)
    return made


def _walk(client, headers, query: str, limit: int) -> tuple[list[str], list[dict]]:
    ids, pages, cursor = [], [], None
    while True:
        url = f"/api/stores?limit={limit}{query}" + (f"&cursor={cursor}" if cursor else "")
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.get_json()
        page = response.get_json()
        assert len(page["items"]) <= limit
        pages.append(page)
        ids += [s["id"] for s in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return ids, pages


def test_list_pages_cover_every_store_once(client, marketer, many_stores):
    ids, pages = _walk(client, marketer, "", 10)
    assert [len(p["items"]) for p in pages] == [10, 10, 5]
    assert ids == sorted(many_stores)
    assert {p["total"] for p in pages} == {25}
    assert pages[0]["items"][0] == {**many_stores["st-00"], "open_now": True}


@pytest.mark.parametrize("limit", [1, 24, 25, 26, 500])
def test_list_page_edges(client, marketer, many_stores, limit):
    ids, pages = _walk(client, marketer, "", limit)
    assert ids == sorted(many_stores)
    assert len(pages) == math.ceil(25 / limit)


@pytest.mark.parametrize(
    "query, expected",
    [
        ("&city=Shanghai", lambda n: n % 3 == 0),
        ("&city=hangzhou", lambda n: n % 3 == 1),
        ("&brand=ACME", lambda n: n % 2 == 0),
        ("&brand=Bolt", lambda n: n % 2 == 1),
        ("&city=Beijing&brand=Bolt", lambda n: n % 3 == 2 and n % 2 == 1),
        ("&city=Shanghai&brand=acme", lambda n: n % 3 == 0 and n % 2 == 0),
        ("&city=Atlantis", lambda n: False),
        ("&city=Shanghai&brand=Nobody", lambda n: False),
    ],
)
@pytest.mark.parametrize("limit", [2, 10])
def test_list_filters(client, marketer, many_stores, query, expected, limit):
    ids, pages = _walk(client, marketer, query, limit)
    want = [f"st-{n:02d}" for n in range(25) if expected(n)]
    assert ids == want
    total = pages[0]["total"]
    assert total is None if "&brand" in query and "&city" in query else total == len(want)


@pytest.mark.parametrize(
    "query, field",
    [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("cursor=%20bad", "cursor"),
        ("colour=red", "colour"),
    ],
)
def test_list_query_validation(client, marketer, query, field):
    response = client.get(f"/api/stores?{query}", headers=marketer)
    code = "unknown_field" if field == "colour" else "validation_error"
    assert_error(response, 422, code, field)


# -- nearby ----------------------------------------------------------------------------------
@pytest.fixture
def ring_of_stores(post_store):
    """Stores at known geodesic distances from CENTER."""
    placed = {}
    for store_id, distance, bearing, brand in [
        ("st-n100", 100, 0, "Acme"),
        ("st-e300", 300, 90, "Bolt"),
        ("st-s700", 700, 180, "acme"),
        ("st-w995", 995, 270, "Bolt"),
        ("st-ne1005", 1005, 45, "Acme"),
        ("st-far", 5000, 200, "Acme"),
    ]:
        lat, lon = offset(distance, bearing)
        post_store(store(store_id, lat=lat, lon=lon, brand=brand))
        placed[store_id] = (lat, lon)
    return placed


def _nearby(client, headers, query: str) -> list[dict]:
    response = client.get(
        f"/api/stores/nearby?lat={CENTER[0]}&lon={CENTER[1]}{query}", headers=headers
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["count"] == len(body["items"])
    return body["items"]


def test_nearby_sorted_with_geodesic_distance_inside_the_radius(client, marketer, ring_of_stores):
    items = _nearby(client, marketer, "&radius_m=1000")
    assert [s["id"] for s in items] == ["st-n100", "st-e300", "st-s700", "st-w995"]
    for item in items:
        exact = geodesic_m(CENTER[0], CENTER[1], *ring_of_stores[item["id"]])
        assert item["distance_m"] == pytest.approx(exact, abs=0.05)
        assert item["open_now"] is True
    assert [s["id"] for s in _nearby(client, marketer, "&radius_m=1010")][-1] == "st-ne1005"
    assert [s["id"] for s in _nearby(client, marketer, "&radius_m=99")] == []
    assert [s["id"] for s in _nearby(client, marketer, "&radius_m=50000")][-1] == "st-far"


def test_nearby_limit_and_brand(client, auth, ring_of_stores):
    headers, _ = auth.headers("shopper")
    assert [s["id"] for s in _nearby(client, headers, "&radius_m=1000&limit=2")] == [
        "st-n100",
        "st-e300",
    ]
    assert [s["id"] for s in _nearby(client, headers, "&radius_m=2000&brand=ACME")] == [
        "st-n100",
        "st-s700",
        "st-ne1005",
    ]
    assert [s["id"] for s in _nearby(client, headers, "&radius_m=2000&brand=acme&limit=1")] == [
        "st-n100"
    ]
    assert _nearby(client, headers, "&brand=Nobody") == []


@pytest.mark.parametrize("query", ["&limit=1&brand=acme", "&limit=1&open_now=true"])
def test_nearby_filter_finds_a_match_behind_many_others(client, marketer, post_store, query):
    closed = {"tz": "Asia/Shanghai", "weekly": {"mon": [["10:00", "11:00"]]}}
    for n in range(30):
        lat, lon = offset(10 + 10 * n, 90)
        post_store(store(f"st-bolt{n:02d}", lat=lat, lon=lon, brand="Bolt", opening_hours=closed))
    lat, lon = offset(900, 0)
    post_store(store("st-acme", lat=lat, lon=lon, brand="Acme"))
    assert [s["id"] for s in _nearby(client, marketer, query)] == ["st-acme"]


def test_nearby_open_now_follows_the_clock_and_local_hours(client, marketer, post_store, clock):
    # The clock starts on Thursday 2026-05-28 20:26:40 UTC: Friday 04:26 in Shanghai,
    # Thursday 21:26 in London (BST).
    every_day = {d: [["10:00", "22:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    hours = {
        "st-day": {"tz": "Asia/Shanghai", "weekly": every_day},
        "st-always": {"tz": "Asia/Shanghai", "always": True},
        "st-null": None,
        "st-night": {"tz": "Asia/Shanghai", "weekly": {"fri": [["00:00", "06:00"]]}},
        "st-london": {"tz": "Europe/London", "weekly": {"thu": [["20:00", "23:00"]]}},
        "st-closed": {"tz": "Asia/Shanghai", "weekly": every_day, "closed_dates": ["2026-05-29"]},
    }
    for n, (store_id, spec) in enumerate(hours.items()):
        lat, lon = offset(50 + 50 * n, 90)
        post_store(store(store_id, lat=lat, lon=lon, opening_hours=spec))

    everything = _nearby(client, marketer, "")
    assert {s["id"]: s["open_now"] for s in everything} == {
        "st-day": False,
        "st-always": True,
        "st-null": True,
        "st-night": True,
        "st-london": True,
        "st-closed": False,
    }
    assert [s["id"] for s in _nearby(client, marketer, "&open_now=true")] == [
        "st-always",
        "st-null",
        "st-night",
        "st-london",
    ]

    clock.advance(6 * 3600)  # Friday 10:26 in Shanghai, 03:26 in London
    assert [s["id"] for s in _nearby(client, marketer, "&open_now=true")] == [
        "st-day",
        "st-always",
        "st-null",
    ]


@pytest.mark.parametrize(
    "query, field",
    [
        ("lon=121.47", "lat"),
        ("lat=31.23", "lon"),
        ("lat=86&lon=121", "lat"),
        ("lat=31&lon=181", "lon"),
        ("lat=nan&lon=121", "lat"),
        ("lat=31&lon=121&radius_m=0", "radius_m"),
        ("lat=31&lon=121&radius_m=50001", "radius_m"),
        ("lat=31&lon=121&limit=201", "limit"),
        ("lat=31&lon=121&open_now=perhaps", "open_now"),
    ],
)
def test_nearby_query_validation(client, marketer, query, field):
    assert_error(
        client.get(f"/api/stores/nearby?{query}", headers=marketer), 422, "validation_error", field
    )


# -- fence and hours refusals ----------------------------------------------------------------
def _square(lat: float, lon: float, half: float = 0.0005) -> list[list[float]]:
    return [
        [lon - half, lat - half],
        [lon + half, lat - half],
        [lon + half, lat + half],
        [lon - half, lat + half],
        [lon - half, lat - half],
    ]


LAT, LON = CENTER
BOWTIE = [
    [LON, LAT],
    [LON + 0.001, LAT + 0.001],
    [LON + 0.001, LAT],
    [LON, LAT + 0.001],
    [LON, LAT],
]
MANY = [
    [LON + 0.001 * math.cos(2 * math.pi * k / 1001), LAT + 0.001 * math.sin(2 * math.pi * k / 1001)]
    for k in range(1001)
]


@pytest.mark.parametrize(
    "fence, field",
    [
        pytest.param({"type": "circle", "radius_m": 19}, "fence.radius_m", id="radius-19"),
        pytest.param({"type": "circle", "radius_m": 5001}, "fence.radius_m", id="radius-5001"),
        pytest.param({"type": "circle", "radius_m": "big"}, "fence.radius_m", id="radius-str"),
        pytest.param({"type": "circle", "radius_m": True}, "fence.radius_m", id="radius-bool"),
        pytest.param({"type": "circle"}, "fence.radius_m", id="radius-missing"),
        pytest.param(
            {"type": "circle", "radius_m": 50, "colour": "red"}, "fence.colour", id="unknown-key"
        ),
        pytest.param(
            {"type": "circle", "radius_m": 50, "center": [200, 31]}, "fence.center", id="center-lon"
        ),
        pytest.param({"type": "square"}, "fence.type", id="unknown-type"),
        pytest.param({"radius_m": 50}, "fence.type", id="no-type"),
        pytest.param(
            {"type": "Polygon", "coordinates": [BOWTIE]},
            "fence.coordinates[0]",
            id="self-intersecting",
        ),
        pytest.param(
            {"type": "Polygon", "coordinates": [_square(LAT, LON)[:-1]]},
            "fence.coordinates[0]",
            id="open-ring",
        ),
        pytest.param(
            {"type": "Polygon", "coordinates": [_square(LAT, LON)[:3]]},
            "fence.coordinates[0]",
            id="too-few-positions",
        ),
        pytest.param(
            {"type": "Polygon", "coordinates": [[*MANY, MANY[0]]]},
            "fence.coordinates",
            id="over-1000-vertices",
        ),
        pytest.param(
            {
                "type": "Polygon",
                "coordinates": [_square(LAT, LON), _square(LAT + 0.01, LON, 0.0001)],
            },
            "fence.coordinates[1]",
            id="hole-outside",
        ),
        pytest.param(
            {"type": "Polygon", "coordinates": [_square(LAT, LON, 0.05)]},
            "fence.coordinates",
            id="too-large",
        ),
        pytest.param(
            {"type": "Polygon", "coordinates": [[[LON, LAT], [LON, LAT], [LON, LAT], [LON, LAT]]]},
            "fence.coordinates[0]",
            id="no-area",
        ),
        pytest.param(
            {
                "type": "MultiPolygon",
                "coordinates": [[_square(LAT, LON)], [_square(LAT, LON + 0.0005)]],
            },
            "fence.coordinates[1]",
            id="overlapping-parts",
        ),
        pytest.param(
            {"type": "Polygon", "coordinates": "nope"}, "fence.coordinates", id="coordinates-str"
        ),
    ],
)
def test_fence_refusals(client, marketer, fence, field):
    response = client.post("/api/stores", json=store(fence=fence), headers=marketer)
    assert_error(response, 422, "invalid_fence", field)
    assert client.get("/api/stores/st-1", headers=marketer).status_code == 404


def test_fence_that_is_not_an_object(client, marketer):
    response = client.post("/api/stores", json=store(fence=[1, 2]), headers=marketer)
    assert_error(response, 422, "validation_error", "fence")


@pytest.mark.parametrize(
    "fence",
    [
        pytest.param({"type": "circle", "radius_m": 20}, id="radius-20"),
        pytest.param({"type": "circle", "radius_m": 5000, "always_active": True}, id="radius-5000"),
        pytest.param({"type": "Polygon", "coordinates": [_square(LAT, LON)]}, id="square"),
        pytest.param(
            {"type": "Polygon", "coordinates": [_square(LAT, LON), _square(LAT, LON, 0.0001)]},
            id="with-hole",
        ),
        pytest.param(
            {"type": "Polygon", "coordinates": [[*MANY[:1000], MANY[0]]]}, id="1000-vertices"
        ),
        pytest.param(
            {
                "type": "MultiPolygon",
                "coordinates": [[_square(LAT, LON)], [_square(LAT, LON + 0.002)]],
            },
            id="multipolygon",
        ),
    ],
)
def test_fences_accepted(client, marketer, fence):
    response = client.post("/api/stores", json=store(fence=fence), headers=marketer)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["fence"]["type"] == fence["type"]


@pytest.mark.parametrize(
    "hours, field",
    [
        pytest.param(
            {"tz": "Mars/Olympus_Mons", "always": True}, "opening_hours.tz", id="unknown-tz"
        ),
        pytest.param({"tz": "", "always": True}, "opening_hours.tz", id="empty-tz"),
        pytest.param({"tz": 8, "always": True}, "opening_hours.tz", id="number-tz"),
        pytest.param(
            {"weekly": {"mon": [["10:00", "22:00"]]}}, "opening_hours.tz", id="missing-tz"
        ),
        pytest.param(
            {"tz": "Asia/Shanghai", "weekly": {"mon": [["10:00", "25:00"]]}},
            "opening_hours.weekly.mon[0]",
            id="bad-time",
        ),
        pytest.param(
            {"tz": "Asia/Shanghai", "weekly": {"funday": []}},
            "opening_hours.weekly.funday",
            id="bad-day",
        ),
        pytest.param(
            {"tz": "Asia/Shanghai", "weekly": {"mon": [["10:00", "14:00"], ["13:00", "18:00"]]}},
            "opening_hours.weekly.mon[1]",
            id="overlap",
        ),
        pytest.param(
            {"tz": "Asia/Shanghai", "always": True, "closed_dates": ["2026-02-30"]},
            "opening_hours.closed_dates[0]",
            id="bad-date",
        ),
        pytest.param(
            {"tz": "Asia/Shanghai", "always": True, "open": True},
            "opening_hours.open",
            id="unknown-key",
        ),
    ],
)
def test_hours_refusals(client, marketer, hours, field):
    response = client.post("/api/stores", json=store(opening_hours=hours), headers=marketer)
    assert_error(response, 422, "invalid_hours", field)


@pytest.mark.parametrize(
    "changes, code, field",
    [
        ({"lat": 85.1}, "validation_error", "lat"),
        ({"lon": -180.5}, "validation_error", "lon"),
        ({"lat": True}, "validation_error", "lat"),
        ({"lat": "31.2"}, "validation_error", "lat"),  # JSON numbers only (CSV cells convert)
        ({"lat": 31}, None, None),
        ({"name": ""}, "validation_error", "name"),
        ({"name": "   "}, "validation_error", "name"),
        ({"brand": "b" * 101}, "validation_error", "brand"),
        ({"id": "has space"}, "validation_error", "id"),
        ({"id": "-leading-dash"}, "validation_error", "id"),
        ({"id": "x" * 65}, "validation_error", "id"),
        ({"phone": "123"}, "unknown_field", "phone"),
    ],
)
def test_store_field_validation(client, marketer, changes, code, field):
    response = client.post("/api/stores", json=store(**changes), headers=marketer)
    if code is None:
        assert response.status_code == 201
    else:
        assert_error(response, 422, code, field)


# -- staff scope -----------------------------------------------------------------------------
def test_staff_see_only_their_own_store(client, auth, post_store):
    post_store(store("st-mine"))
    post_store(store("st-other"))
    staff, user = auth.headers("staff", store_id="st-mine")
    assert user["store_id"] == "st-mine"
    assert client.get("/api/stores/st-mine", headers=staff).get_json()["id"] == "st-mine"
    assert_error(
        client.get("/api/stores/st-other", headers=staff), 403, "not_your_store", "store_id"
    )
    # Not even whether another store exists leaks.
    assert_error(
        client.get("/api/stores/st-nowhere", headers=staff), 403, "not_your_store", "store_id"
    )
    for method, path in [
        ("get", "/api/stores"),
        ("put", "/api/stores/st-mine"),
        ("patch", "/api/stores/st-mine"),
        ("delete", "/api/stores/st-mine"),
        ("get", "/api/stores/export.geojson"),
        ("post", "/api/stores"),
    ]:
        assert_error(getattr(client, method)(path, headers=staff), 403, "forbidden_role")


# -- GeoJSON export --------------------------------------------------------------------------
def test_geojson_export(client, marketer, post_store):
    post_store(store("st-circle", fence={"type": "circle", "radius_m": 120}))
    square = _square(31.25, 121.45)
    post_store(
        store(
            "st-poly",
            city="Hangzhou",
            lat=31.25,
            lon=121.45,
            fence={"type": "Polygon", "coordinates": [square], "always_active": True},
        )
    )
    response = client.get("/api/stores/export.geojson", headers=marketer)
    assert response.status_code == 200
    assert response.mimetype == "application/geo+json"
    doc = response.get_json(force=True)
    assert doc["type"] == "FeatureCollection"
    by_id = {f["id"]: f for f in doc["features"]}
    assert set(by_id) == {"st-circle", "st-circle#fence", "st-poly", "st-poly#fence"}

    point = by_id["st-circle"]
    assert point["geometry"] == {"type": "Point", "coordinates": [CENTER[1], CENTER[0]]}
    assert point["properties"]["name"] == "Store st-circle"
    assert point["properties"]["fence"]["radius_m"] == 120

    circle = by_id["st-circle#fence"]
    assert circle["geometry"]["type"] == "Polygon"
    assert circle["properties"] == {
        "store_id": "st-circle",
        "role": "fence",
        "kind": "circle",
        "always_active": False,
        "radius_m": 120,
    }
    ring = circle["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1] and len(ring) >= 33
    for lon, lat in ring:  # [lon, lat] order, every vertex on the circle
        assert geodesic_m(CENTER[0], CENTER[1], lat, lon) == pytest.approx(120, abs=0.5)

    poly = by_id["st-poly#fence"]
    assert poly["geometry"] == {"type": "Polygon", "coordinates": [square]}
    assert poly["properties"]["kind"] == "polygon"
    assert poly["properties"]["always_active"] is True
    assert "radius_m" not in poly["properties"]
    assert by_id["st-poly"]["geometry"]["coordinates"] == [121.45, 31.25]

    only = client.get("/api/stores/export.geojson?city=hangzhou", headers=marketer)
    assert {f["id"] for f in only.get_json(force=True)["features"]} == {"st-poly", "st-poly#fence"}


def test_geojson_export_of_an_empty_catalog(client, marketer):
    response = client.get("/api/stores/export.geojson", headers=marketer)
    assert response.get_json(force=True) == {"type": "FeatureCollection", "features": []}


def square(lat: float, lon: float, half: float = 0.001) -> dict:
    """A Polygon fence: a square of 2*half degrees around (lat, lon), in [lon, lat] order."""
    ring = [
        [lon - half, lat - half],
        [lon + half, lat - half],
        [lon + half, lat + half],
        [lon - half, lat + half],
        [lon - half, lat - half],
    ]
    return {"type": "Polygon", "coordinates": [ring]}


BEIJING = (39.9042, 116.4074)


@pytest.mark.parametrize(
    "fence, field",
    [
        pytest.param(square(*BEIJING), "fence.coordinates", id="shanghai-store-beijing-fence"),
        pytest.param(
            {"type": "MultiPolygon", "coordinates": [square(*BEIJING)["coordinates"]]},
            "fence.coordinates",
            id="multipolygon-elsewhere",
        ),
        pytest.param(
            square(CENTER[0] + 0.01, CENTER[1]), "fence.coordinates", id="polygon-1-km-north"
        ),
        pytest.param(
            {"type": "circle", "radius_m": 100, "center": [BEIJING[1], BEIJING[0]]},
            "fence.center",
            id="circle-centred-elsewhere",
        ),
        pytest.param(
            {"type": "circle", "radius_m": 100, "center": [CENTER[1], CENTER[0] + 0.01]},
            "fence.center",
            id="circle-1-km-north",
        ),
    ],
)
def test_a_fence_far_from_its_store_is_refused(client, marketer, fence, field):
    error = assert_error(
        client.post("/api/stores", json=store(fence=fence), headers=marketer),
        422,
        "invalid_fence",
        field,
    )
    assert "500 m" in error["message"]
    assert client.get("/api/stores/st-1", headers=marketer).status_code == 404


def test_a_fence_is_refused_when_lat_and_lon_of_its_ring_are_swapped(client, marketer):
    # A Paris store whose fence was written [lat, lon] instead of [lon, lat]: off Somalia.
    paris = {"lat": 48.8566, "lon": 2.3522, "city": "Paris"}
    swapped = square(paris["lon"], paris["lat"])
    assert_error(
        client.post("/api/stores", json=store(**paris, fence=swapped), headers=marketer),
        422,
        "invalid_fence",
        "fence.coordinates",
    )
    right = square(paris["lat"], paris["lon"])
    assert (
        client.post("/api/stores", json=store(**paris, fence=right), headers=marketer).status_code
        == 201
    )


@pytest.mark.parametrize(
    "fence",
    [
        pytest.param(square(*CENTER), id="polygon-around-the-store"),
        # 0.004° east of the store ≈ 380 m; the square's west edge is ~285 m away.
        pytest.param(square(CENTER[0], CENTER[1] + 0.004), id="polygon-300-m-east"),
        pytest.param(
            {"type": "circle", "radius_m": 100, "center": [CENTER[1] + 0.005, CENTER[0]]},
            id="circle-400-m-east",
        ),
    ],
)
def test_a_fence_containing_or_near_its_store_is_accepted(client, marketer, fence):
    response = client.post("/api/stores", json=store(fence=fence), headers=marketer)
    assert response.status_code == 201, response.get_json()


def test_the_fence_offset_is_a_setting(make_app):
    app = make_app(FENCE_MAX_OFFSET_M=100)
    accounts = app.extensions["accounts"]
    accounts.create_user("m@example.test", "correct-horse-1", "marketer")
    token = accounts.open_session(accounts.find_by_email("m@example.test"))["token"]
    response = app.test_client().post(
        "/api/stores",
        json=store(fence=square(CENTER[0], CENTER[1] + 0.004)),
        headers={"Authorization": f"Bearer {token}"},
    )
    error = assert_error(response, 422, "invalid_fence", "fence.coordinates")
    assert "100 m" in error["message"]


def test_list_open_now_filters_by_each_stores_hours_in_its_zone(
    client, marketer, post_store, clock
):
    # T0 is Friday 04:26 in Shanghai and Thursday 21:26 in London (summer time).
    shanghai_morning = {"fri": [["00:00", "10:00"]]}
    london_morning = {"fri": [["05:00", "10:00"]]}
    post_store(store("st-a", opening_hours=None))  # no hours: always open
    post_store(store("st-b", opening_hours={"tz": "Asia/Shanghai", "weekly": shanghai_morning}))
    post_store(store("st-c", opening_hours={"tz": "Europe/London", "weekly": london_morning}))
    post_store(store("st-d", opening_hours={"tz": "Asia/Shanghai", "weekly": {}}))
    post_store(store("st-e", brand="Bolt", opening_hours={"tz": "Asia/Shanghai", "always": True}))

    everything = client.get("/api/stores", headers=marketer).get_json()
    assert {s["id"]: s["open_now"] for s in everything["items"]} == {
        "st-a": True,
        "st-b": True,
        "st-c": False,
        "st-d": False,
        "st-e": True,
    }
    assert everything["total"] == 5

    ids, pages = _walk(client, marketer, "&open_now=true", 1)
    assert ids == ["st-a", "st-b", "st-e"]
    assert {p["total"] for p in pages} == {None}  # filtered per record: no count
    ids, _ = _walk(client, marketer, "&open_now=true&brand=acme", 2)
    assert ids == ["st-a", "st-b"]
    ids, _ = _walk(client, marketer, "&open_now=true&city=shanghai&brand=bolt", 2)
    assert ids == ["st-e"]
    # Eight hours later (Friday 12:26 and 05:26) Shanghai's store is closed, London's open.
    clock.advance(8 * 3600)
    ids, _ = _walk(client, marketer, "&open_now=true", 10)
    assert ids == ["st-a", "st-c", "st-e"]
    response = client.get("/api/stores?open_now=maybe", headers=marketer)
    assert_error(response, 422, "validation_error", "open_now")


def test_store_map_lists_every_store_compactly(client, marketer, many_stores):
    response = client.get("/api/stores/map", headers=marketer)
    assert response.status_code == 200
    doc = response.get_json()
    assert [s["id"] for s in doc["items"]] == sorted(many_stores)
    first = many_stores["st-00"]
    assert doc["items"][0] == {
        k: first[k] for k in ("id", "name", "brand", "city", "lat", "lon", "fence")
    }
    assert isinstance(doc["version"], int) and doc["version"] >= 25
