"""The Socket.IO queue manager against a real Redis: one connect for every URL kind, a bounded
publisher under a burst."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from redis.sentinel import SentinelConnectionPool

from app.sinks import RedisQueueManager, redis_connect
from tests.servers import wait_for


def test_redis_connect_reads_redis_and_valkey_urls(redis_server):
    for url in (redis_server, redis_server.replace("redis://", "valkey://", 1)):
        client = redis_connect(url, socket_connect_timeout=2)
        try:
            assert client.ping() is True
        finally:
            client.close()
    with pytest.raises(ValueError):
        redis_connect("memcached://127.0.0.1:11211")


def test_redis_connect_reads_sentinel_urls():
    client = redis_connect(
        "valkey+sentinel://:pw@10.0.0.1:26379,10.0.0.2:26380/2/orders", max_connections=7
    )
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "orders"
    assert pool.max_connections == 7
    assert pool.connection_kwargs["db"] == 2 and pool.connection_kwargs["password"] == "pw"
    assert [
        (c.connection_pool.connection_kwargs["host"], c.connection_pool.connection_kwargs["port"])
        for c in pool.sentinel_manager.sentinels
    ] == [("10.0.0.1", 26379), ("10.0.0.2", 26380)]


def test_a_burst_of_publishes_waits_for_a_bounded_pool(redis_server):
    manager = RedisQueueManager(
        redis_server,
        channel="burst-test",
        write_only=True,
        publish_connections=4,
        redis_options={"client_name": "queue-publisher"},
    )
    listener = redis_connect(redis_server)
    pubsub = listener.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe("burst-test")
    pubsub.get_message(timeout=1)
    received: list[bytes] = []
    most = [0]
    done = threading.Event()

    def count_publishers() -> None:
        while not done.is_set():
            clients = listener.client_list()
            most[0] = max(most[0], sum(c["name"] == "queue-publisher" for c in clients))

    watcher = threading.Thread(target=count_publishers)
    watcher.start()
    try:
        with ThreadPoolExecutor(64) as pool:
            list(
                pool.map(
                    lambda i: manager.emit("e", {"i": i}, namespace="/x", room="r"), range(500)
                )
            )

        def all_received() -> bool:
            while (message := pubsub.get_message(timeout=0.1)) is not None:
                received.append(message["data"])
            return len(received) >= 500

        wait_for(all_received, 20, lambda: f"500 messages, got {len(received)}")
    finally:
        done.set()
        watcher.join()
        pubsub.close()
        listener.close()
    assert len(received) == 500
    assert 1 <= most[0] <= 4
