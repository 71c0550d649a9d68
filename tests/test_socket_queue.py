"""The Socket.IO queue manager against a real Redis: one connect for every URL kind, a bounded
publisher under a burst."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from redis.crc import key_slot
from redis.sentinel import SentinelConnectionPool

from app.sinks import (
    RedisQueueManager,
    ShardedQueueManager,
    is_cluster_url,
    queue_manager,
    redis_connect,
    shard_channels,
)
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


class QueueListener:
    """Hear what a queue manager publishes: its channel on a server, every one of its shard
    channels (SSUBSCRIBE on the master serving each) on a cluster."""

    def __init__(self, url: str, manager: RedisQueueManager) -> None:
        self.client = redis_connect(url)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.sharded = isinstance(manager, ShardedQueueManager)
        if self.sharded:
            for channel in manager.shard_channels:  # one slot per SSUBSCRIBE
                self.pubsub.ssubscribe(channel)
        else:
            self.pubsub.subscribe(manager.channel)

    def drain(self, into: list[bytes]) -> None:
        read = self.pubsub.get_sharded_message if self.sharded else self.pubsub.get_message
        while (message := read(timeout=0.1)) is not None:
            into.append(message["data"])

    def clients_named(self, name: str) -> int:
        """The most connections named `name` on one node (a cluster client pools per node)."""
        if not self.sharded:
            return sum(c["name"] == name for c in self.client.client_list())
        nodes = [self.client.get_redis_connection(n) for n in self.client.get_primaries()]
        return max(sum(c["name"] == name for c in node.client_list()) for node in nodes)

    def close(self) -> None:
        self.pubsub.close()
        self.client.close()


def test_a_burst_of_publishes_waits_for_a_bounded_pool(redis_server):
    manager = queue_manager(
        redis_server,
        channel="burst-test",
        write_only=True,
        publish_connections=4,
        redis_options={"client_name": "queue-publisher"},
    )
    assert isinstance(manager, ShardedQueueManager) == is_cluster_url(redis_server)
    listener = QueueListener(redis_server, manager)
    received: list[bytes] = []
    most = [0]
    done = threading.Event()

    def count_publishers() -> None:
        while not done.is_set():
            most[0] = max(most[0], listener.clients_named("queue-publisher"))

    watcher = threading.Thread(target=count_publishers)
    watcher.start()
    try:
        with ThreadPoolExecutor(64) as pool:
            list(
                pool.map(
                    lambda i: manager.emit("e", {"i": i}, namespace="/x", room=f"r{i % 7}"),
                    range(500),
                )
            )

        def all_received() -> bool:
            listener.drain(received)
            return len(received) >= 500

        wait_for(all_received, 20, lambda: f"500 messages, got {len(received)}")
    finally:
        done.set()
        watcher.join()
        listener.close()
    assert len(received) == 500
    assert 1 <= most[0] <= 4


# The slots of a 3-master cluster's masters, as `valkey-cli --cluster create` assigns them.
MASTERS = [(0, 5460), (5461, 10922), (10923, 16383)]


def test_a_server_keeps_its_one_channel_and_a_cluster_spreads_shards_over_the_slots():
    single = queue_manager("redis://127.0.0.1:1/0", write_only=True)
    assert type(single) is RedisQueueManager
    assert single.queue_channel({"method": "emit", "room": "live:1"}) == "flask-socketio"
    with pytest.raises(ValueError):
        ShardedQueueManager("redis://127.0.0.1:1/0")

    sharded = queue_manager("redis+cluster://127.0.0.1:1", write_only=True)
    channels = sharded.shard_channels
    assert channels == shard_channels("flask-socketio", 24) and len(set(channels)) == 24
    # Shard k's slot lies in the k-th 24th of the slots: 3 equal masters serve 8 each.
    slots = [key_slot(channel.encode()) for channel in channels]
    assert all(k * 16384 // 24 <= slot < (k + 1) * 16384 // 24 for k, slot in enumerate(slots))
    assert [sum(low <= s <= high for s in slots) for low, high in MASTERS] == [8, 8, 8]
    assert len(shard_channels("flask-socketio", 16)) == 16 and sharded.channel == "flask-socketio"

    def channel(**message):
        return sharded.queue_channel(message)

    # A room's emits and its closing share a shard (their order holds); so do an emit to a
    # connection and that connection's disconnect.
    assert channel(method="emit", room="live:7") == channel(method="close_room", room="live:7")
    assert channel(method="emit", room="sid1") == channel(method="disconnect", sid="sid1")
    # Rooms spread over the shards; an emit to a whole namespace goes to that namespace's.
    rooms = {channel(method="emit", room=f"shopper:{i}") for i in range(200)}
    assert rooms == set(channels)
    assert channel(method="emit", namespace="/live") == channel(method="emit", namespace="/live")
