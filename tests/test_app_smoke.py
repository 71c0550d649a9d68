def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz(client):
    assert client.get("/readyz").get_json()["redis"] is True
