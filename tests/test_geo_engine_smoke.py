def test_enter_dwell_exit(app, auth, clock):
    headers, user = auth.headers("marketer")
    client = app.test_client()
    r = client.post(
        "/api/stores",
        json={
            "id": "s1",
            "name": "S",
            "brand": "B",
            "city": "Shanghai",
            "lat": 31.2400,
            "lon": 121.4800,
            "fence": {"type": "circle", "radius_m": 100},
        },
        headers=headers,
    )
    assert r.status_code == 201, r.get_json()
    sh, shopper = auth.headers("shopper")
    t = clock.now()
    r = client.post(
        "/api/location/fix",
        json={"lat": 31.2400, "lon": 121.4800, "accuracy_m": 10, "recorded_at": t},
        headers=sh,
    )
    assert r.status_code == 200, r.get_json()
    print(r.get_json())
    kinds = [e["kind"] for e in r.get_json()["results"][0]["events"]]
    assert kinds == ["enter"]
    # The clock moves with the fixes: a stamp ahead of the server's clock does not stretch time.
    clock.advance(130)
    r = client.post(
        "/api/location/fix",
        json={"lat": 31.2400, "lon": 121.4800, "accuracy_m": 10, "recorded_at": t + 130},
        headers=sh,
    )
    assert [e["kind"] for e in r.get_json()["results"][0]["events"]] == ["dwell"]
    for dt in (200, 210):
        clock.advance(t + dt - clock.now())
        r = client.post(
            "/api/location/fix",
            json={"lat": 31.2450, "lon": 121.4800, "accuracy_m": 10, "recorded_at": t + dt},
            headers=sh,
        )
    assert [e["kind"] for e in r.get_json()["results"][0]["events"]] == ["exit"]
