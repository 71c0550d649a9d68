"""Webhook delivery across real server processes: a server killed (-9) in the middle of a
delivery leaves it pending, and another server claims and delivers it (same webhook-id)."""

from __future__ import annotations

import os
import signal
import threading

import pytest
from standardwebhooks import Webhook

from app.sinks import redis_connect
from tests.promo_helpers import add_stores, issue, live_campaign
from tests.servers import start_gunicorn, wait_for
from tests.test_processes import make_helper_app
from tests.webhook_receiver import Answer, Receiver
from webhooks import EndpointIn, keys

SERVER_ENV = {
    "WEBHOOK_ALLOW_HTTP": "1",
    "WEBHOOK_ALLOW_NETS": "127.0.0.0/8",
    "WEBHOOK_TIMEOUT_S": "2",
    "WEBHOOK_CLAIM_IDLE_MS": "3000",
    "WEBHOOK_POLL_MS": "50",
}


@pytest.fixture
def store(redis_server):
    client = redis_connect(redis_server)
    client.flushdb()
    yield client
    client.close()


def test_a_delivery_in_flight_on_a_killed_process_is_delivered_by_another(
    store, redis_server, tmp_path
):
    helper = make_helper_app(redis_server, tmp_path)
    hooks = helper.extensions["webhooks"]
    release = threading.Event()
    with Receiver() as receiver:
        receiver.answer(Answer(200, hold=release))  # the first attempt hangs at the receiver
        _, secret = hooks.endpoints.create(
            EndpointIn(url=receiver.url, event_types=["coupon.issued"]), "admin:a1"
        )
        first = start_gunicorn(redis_server, extra_env=SERVER_ENV)
        second = None
        try:
            promos = helper.extensions["promotions"]
            add_stores(helper.extensions["stores"], 1)
            now = helper.extensions["clock"].now()  # the servers' real clock
            cid, oid = live_campaign(promos, starts=now - 3600, ends=now + 86_400)
            coupon = issue(promos, cid, oid, shopper="s1").coupon
            (held,) = receiver.wait_count(1, timeout=30)
            # The first server is mid-delivery: kill it (master and worker) without a chance
            # to record anything.
            os.killpg(first.pid, signal.SIGKILL)
            first.process.wait()
            pending = sum(
                store.xpending(keys.queue(k), keys.QUEUE_GROUP)["pending"]
                for k in range(keys.PARTITIONS)
            )
            assert pending == 1
            second = start_gunicorn(redis_server, extra_env=SERVER_ENV)
            again = receiver.wait_count(2, timeout=60)[1]
            assert again.msg_id == held.msg_id
            doc = Webhook(secret).verify(again.body, again.headers)
            assert doc["type"] == "coupon.issued" and doc["data"]["coupon_id"] == coupon["id"]

            def recorded():
                items = hooks.log.attempts(hooks.endpoints.list()[0]["id"])["items"]
                return items and items[0]["result"] == "succeeded"

            wait_for(recorded, 30, "the second server records the delivery")
            assert all(
                store.xpending(keys.queue(k), keys.QUEUE_GROUP)["pending"] == 0
                for k in range(keys.PARTITIONS)
            )
        finally:
            release.set()
            first.close()
            if second is not None:
                second.close()
