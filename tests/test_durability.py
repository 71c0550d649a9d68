"""Replica waits (REDIS_WAIT_REPLICAS): a money write is acknowledged only once its master has it
on the asked replicas; otherwise 503 not_replicated + Retry-After, the write kept, and the same
request again answers the same coupon. A real master with a real replica (no mocks)."""

from __future__ import annotations

import pytest
import redis

from app.redis_supervisor import EmbeddedRedis, free_port
from app.sinks import redis_connect
from config import TestConfig
from core.durability import Durability, NotReplicated, fence_key
from tests.servers import wait_for


@pytest.fixture(scope="module")
def primary(tmp_path_factory):
    server = EmbeddedRedis(
        tmp_path_factory.mktemp("primary"),
        free_port(),
        appendonly=False,
        extra_args=["--repl-diskless-sync-delay", "0"],  # a replica's first sync starts at once
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def replica(primary, tmp_path_factory):
    """A replica of `primary`, started by the test that needs it (module-scoped)."""
    server = EmbeddedRedis(
        tmp_path_factory.mktemp("replica"),
        free_port(),
        appendonly=False,
        extra_args=["--replicaof", "127.0.0.1", str(primary.port)],
    )
    server.start()
    client = redis.Redis(port=primary.port, decode_responses=True)
    wait_for(
        lambda: client.info("replication").get("slave0", {}).get("state") == "online",
        15,
        "the replica's first sync",
    )
    client.close()
    yield server
    server.stop()


def test_fence_keys_share_the_written_keys_slot():
    assert fence_key("promo:{c:7}:state") == "durable:{c:7}"
    assert fence_key("live:{l:12}:drop:d1") == "durable:{l:12}"
    assert redis.crc.key_slot(b"durable:{c:7}") == redis.crc.key_slot(b"promo:{c:7}:state")
    assert fence_key("plain") == "durable:{plain}"


def test_off_by_default_and_bounded():
    client = redis.Redis(port=1)  # never contacted: nothing to wait for
    Durability(client).confirm("promo:{c:1}:state")
    assert not Durability(client).enabled
    with pytest.raises(ValueError):
        Durability(client, 1, 0)
    with pytest.raises(ValueError):
        Durability(client, -1)


def test_without_a_replica_a_write_is_kept_but_not_confirmed(primary):
    client = redis_connect(primary.url, decode_responses=True)
    client.set("promo:{c:1}:state", "written")
    durable = Durability(client, 1, 50, retry_after_s=3)
    with pytest.raises(NotReplicated) as refused:
        durable.confirm("promo:{c:1}:state")
    assert refused.value.status == 503
    assert refused.value.code == "not_replicated"
    assert refused.value.retry_after == 3
    assert client.get("promo:{c:1}:state") == "written"
    client.close()


def test_with_a_replica_the_write_is_on_it_when_confirmed(primary, replica):
    client = redis_connect(primary.url, decode_responses=True)
    follower = redis.Redis(port=replica.port, decode_responses=True)
    durable = Durability(client, 1, 2000)
    for n in range(20):
        client.set("promo:{c:2}:state", n)
        durable.confirm("promo:{c:2}:state", "promo:{u:s1}:campaigns")
        # Confirmed means on the replica now, not eventually.
        assert follower.get("promo:{c:2}:state") == str(n)
    # More replicas than there are: refused after the timeout, never waiting longer.
    with pytest.raises(NotReplicated):
        Durability(client, 2, 50).confirm("promo:{c:2}:state")
    client.close()
    follower.close()


def test_the_api_answers_503_until_the_replicas_have_the_coupon(primary, replica, tmp_path, clock):
    """Manual issue through the app: not on the asked replicas → 503 + Retry-After and the
    coupon kept; the same request (same idempotency key) answers the same coupon once they
    have it."""
    from app import create_app
    from tests.conftest import AuthActions
    from tests.promo_helpers import live_campaign

    flush = redis_connect(primary.url)
    flush.flushdb()
    flush.close()
    app = create_app(
        TestConfig(
            REDIS_URL=primary.url,
            VAR_DIR=tmp_path / "var",
            REDIS_WAIT_REPLICAS=2,  # one more than the module has: never confirmed
            REDIS_WAIT_TIMEOUT_MS=50,
            RETRY_AFTER_S=4,
        ),
        clock=clock,
    )
    promos = app.extensions["promotions"]
    cid, oid = live_campaign(promos)
    client = app.test_client()
    auth = AuthActions(app, client)
    shopper = auth.signup()["user"]["id"]
    headers, _ = auth.headers("marketer")
    body = {"shopper_id": shopper, "idempotency_key": "k-1"}
    url = f"/api/campaigns/{cid}/offers/{oid}/issue"
    first = client.post(url, json=body, headers=headers)
    assert first.status_code == 503, first.get_json()
    assert first.headers["Retry-After"] == "4"
    assert first.get_json()["error"]["code"] == "not_replicated"
    # Kept: the wallet lists it.
    (kept,) = promos.coupons.wallet(shopper)["items"]
    # Now the one replica is enough: the same request answers the same coupon.
    promos.durability.replicas = 1
    again = client.post(url, json=body, headers=headers)
    assert again.status_code == 200, again.get_json()
    assert again.get_json()["outcome"] == "existing"
    assert again.get_json()["coupon"]["id"] == kept["id"]
    assert len(promos.coupons.wallet(shopper)["items"]) == 1
    app.extensions["redis"].close()


def test_a_visit_coupon_not_confirmed_is_handled_again_by_the_consumer(primary, replica, clock):
    """The visit consumer leaves an event unacknowledged on a storage error; a coupon not yet
    on the asked replicas is one (NotReplicated is a RedisError), so the event is handled again
    later, idempotently: the same coupon, acknowledged then."""
    from geo import keys as geo_keys
    from promotions import keys as promo_keys
    from tests.promo_helpers import add_stores, append_geo_event, live_campaign, make_promotions

    r = redis_connect(primary.url, decode_responses=True)
    r.flushdb()
    promos = make_promotions(r, clock)
    add_stores(promos.campaigns.catalog)
    live_campaign(promos, channels=["visit"], visit_trigger="enter")
    consumer = promos.consumer("worker-d")
    append_geo_event(r, "u1", "acme-0", "enter", clock.now())
    promos.durability.replicas, promos.durability.timeout_ms = 2, 50  # more than there are
    with pytest.raises(NotReplicated):
        consumer.run_once()
    assert r.xpending(geo_keys.shopper_events("u1"), promo_keys.CONSUMER_GROUP)["pending"] == 1
    (kept,) = promos.coupons.wallet("u1")["items"]
    promos.durability.replicas, promos.durability.timeout_ms = 1, 2000
    assert consumer.recover(min_idle_ms=0) == 1
    assert r.xpending(geo_keys.shopper_events("u1"), promo_keys.CONSUMER_GROUP)["pending"] == 0
    assert [c["id"] for c in promos.coupons.wallet("u1")["items"]] == [kept["id"]]
    r.close()
