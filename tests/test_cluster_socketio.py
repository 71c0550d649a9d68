"""Socket.IO fan-out on a Valkey Cluster: two gunicorn processes on a redis+cluster:// URL
exchange emits through sharded pub/sub (SPUBLISH to shard channels spread over the masters),
and after a master's death its replica takes its shard channels over with no viewer missing a
live broadcast (the history fills what the queue lost)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.redis_supervisor import EmbeddedCluster
from app.sinks import QUEUE_CHANNEL, QUEUE_SHARDS, redis_connect, shard_channel_for
from app.sinks import shard_channels as queue_shard_channels
from tests.servers import wait_for
from tests.test_live_processes import Client, offsets_heard, schedule_stream
from tests.test_processes import ShopperSocket, bearer, http_session, queue_subscribers, session_for
from tests.two_servers import (  # noqa: F401 - fixtures
    _server_logs,
    helper_app,
    servers,
    shared_redis,
)

CHANNELS = queue_shard_channels(QUEUE_CHANNEL, QUEUE_SHARDS)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[EmbeddedCluster]:
    """This module's own cluster: its last test kills a master."""
    server = EmbeddedCluster(
        tmp_path_factory.mktemp("socketio-cluster"), node_timeout_ms=1000, appendonly=False
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def redis_server(cluster) -> str:
    """The two servers (tests/two_servers.py) run on this module's cluster."""
    return cluster.url


@pytest.fixture
def cluster_client(cluster):
    client = redis_connect(cluster.url, decode_responses=True, socket_timeout=2.0)
    yield client
    client.close()


def shard_owner(client, room: str) -> tuple[str, int]:
    """The shard channel an emit to `room` goes to, and the port of the master serving it."""
    channel = shard_channel_for(CHANNELS, {"method": "emit", "room": room})
    return channel, client.get_node_from_key(channel).port


class Show:
    """A live stream with its host console on one process and a viewer on the other."""

    def __init__(self, app, host_url: str, viewer_url: str, cluster_client) -> None:
        host = session_for(app, "host")
        self.id = schedule_stream(host_url, host["token"], [host["user"]["id"]])
        self.room = f"live:{self.id}"
        self.channel, self.shard_port = shard_owner(cluster_client, self.room)
        self.history_port = cluster_client.get_node_from_key(f"live:{{l:{self.id}}}:history").port
        self.host = Client(host_url, "/host", {"token": host["token"], "stream_id": self.id})
        self.viewer = Client(viewer_url, "/live", {"token": session_for(app, "shopper")["token"]})

    def go_live(self) -> None:
        assert "state" in self.viewer.call("join", {"stream_id": self.id})
        assert self.host.call("start") == {"status": "live"}
        assert self.viewer.wait_for("stream_status")["status"] == "live"

    def close(self) -> None:
        for client in (self.viewer, self.host):
            try:
                client.close()
            except Exception:
                pass


def spublish_calls(port: int) -> tuple[int, int]:
    """SPUBLISH and PUBLISH calls a node has served."""
    client = redis_connect(f"redis://127.0.0.1:{port}")
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return (
        stats.get("cmdstat_spublish", {}).get("calls", 0),
        stats.get("cmdstat_publish", {}).get("calls", 0),
    )


def test_emits_cross_processes_on_shards_of_every_master(
    servers, helper_app, cluster, cluster_client
):
    server_a, server_b = servers
    masters = cluster.masters()
    shows: list[Show] = []
    try:
        # Streams until their viewers' rooms use shards of every master (a room's shard is
        # the CRC of its name: a few streams are enough).
        while {show.shard_port for show in shows} != set(masters):
            assert len(shows) < 20, [(s.room, s.channel, s.shard_port) for s in shows]
            show = Show(helper_app, server_b.url, server_a.url, cluster_client)
            if show.shard_port in {s.shard_port for s in shows}:
                show.close()
                continue
            shows.append(show)
        assert len({show.channel for show in shows}) == 3
        for show in shows:
            show.go_live()  # B's host starts; A's viewer hears stream_status through the queue
        for show in shows:
            assert "text" in show.host.call("announce", {"text": f"hello {show.room}"})
        for show in shows:
            assert show.viewer.wait_for("announcement")["text"] == f"hello {show.room}"

        # Every process subscribes to every shard channel, on the master serving it; the
        # channels are spread over the masters (24 over 3: 8 each).
        assert queue_subscribers(cluster.url) == 2
        for port in masters:
            node = redis_connect(f"redis://127.0.0.1:{port}", decode_responses=True)
            try:
                active = set(node.pubsub_shardchannels(f"{QUEUE_CHANNEL}:*"))
                counts = dict(node.pubsub_shardnumsub(*active))
            finally:
                node.close()
            assert active <= set(CHANNELS)
            assert len(active) == QUEUE_SHARDS // 3, (port, active)
            assert set(counts.values()) == {2}, counts
        # Each master published with SPUBLISH; no node served a classic PUBLISH (which a
        # cluster would broadcast to every node).
        for port in masters:
            spublished, published = spublish_calls(port)
            assert spublished > 0 and published == 0, (port, spublished, published)
        for port in {p for m in masters for p in cluster.replicas_of(m)}:
            assert spublish_calls(port)[1] == 0
    finally:
        for show in shows:
            show.close()


def test_a_logout_on_one_process_closes_the_socket_on_the_other(servers, helper_app):
    server_a, server_b = servers
    session = session_for(helper_app, "shopper")
    socket = ShopperSocket(server_a.url, session["token"])
    try:
        # B publishes the disconnect (sharded by the connection's id); A closes the socket.
        with http_session() as http:
            response = http.post(
                server_b.url + "/api/auth/logout", headers=bearer(session["token"]), timeout=10
            )
        assert response.status_code == 200, response.text
        wait_for(lambda: not socket.client.connected, 10, "the socket to be closed")
    finally:
        socket.close()


def test_fan_out_resumes_after_a_master_dies_and_no_broadcast_is_missed(
    servers, helper_app, cluster, cluster_client
):
    """Runs last in this module: the cluster is left with a master without a replica."""
    server_a, server_b = servers
    show = None
    try:
        # A stream whose viewers' shard channel is on one master and whose history is on
        # another: the history is written while the shard's master is down.
        while show is None or show.shard_port == show.history_port:
            if show is not None:
                show.close()
            show = Show(helper_app, server_b.url, server_a.url, cluster_client)
        show.go_live()
        wait_for(lambda: queue_subscribers(cluster.url) == 2, 10, "both processes subscribed")
        (replica,) = cluster.replicas_of(show.shard_port)

        cluster.kill(show.shard_port, hard=True)
        # Announced while the shard's master is dead or just replaced: B's publish fails or
        # lands before A has subscribed on the new master; A's viewer gets it either way.
        for i in range(2):
            ack = show.host.call("announce", {"text": f"during {i}"})
            assert "text" in ack, ack
        wait_for(lambda: cluster.roles().get(replica) == "master", 15, "the replica's promotion")
        # Both processes subscribe again by themselves, on the promoted replica.
        wait_for(
            lambda: queue_subscribers(cluster.url) == 2,
            20,
            "both processes subscribed on the new master",
            ignore=(Exception,),
        )
        client = redis_connect(cluster.url, decode_responses=True)
        try:
            assert client.get_node_from_key(show.channel).port == replica
        finally:
            client.close()
        wait_for(
            lambda: "socket.io queue subscribed again" in server_a.output(limit=10**9),
            10,
            "A's resubscribed hooks (the history's catch-up)",
        )
        assert "text" in show.host.call("announce", {"text": "after"})

        history = helper_app.extensions["live"].history.since(show.id, 0).events
        announced = [e["offset"] for e in history if e["event"] == "announcement"]
        assert len(announced) == 3, history
        heard: list[int] = []

        def all_heard() -> bool:
            heard.extend(offsets_heard(show.viewer, "announcement"))
            return len(set(heard)) >= 3

        wait_for(all_heard, 20, lambda: f"three announcements, heard {heard}")
        heard.extend(offsets_heard(show.viewer, "announcement"))
        assert sorted(heard) == announced, (heard, history)  # each once
        assert show.viewer.sio.connected and show.host.sio.connected
    finally:
        if show is not None:
            show.close()
