"""Cluster mode: a throwaway Valkey cluster (3 masters, 1 replica each) from the pip-installed
binaries, a redis+cluster:// URL read by redis_connect and create_app, Lua scripts on one hash
tag, readiness, and a replica's promotion after a master is killed."""

from __future__ import annotations

import json

import pytest
import redis

from app.redis_supervisor import EmbeddedCluster
from app.sinks import redis_connect
from config import TestConfig
from core.scripts import LuaScripts
from geo import keys as geo_keys
from geo.engine import EngineSettings, LocationEngine
from geo.stores import StoreCatalog
from tests.servers import wait_for
from tests.test_geo_engine import SHANGHAI, add_store, fix_at, offset


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One cluster for this module (its last test kills a master)."""
    server = EmbeddedCluster(tmp_path_factory.mktemp("cluster"), node_timeout_ms=1000)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def cluster_client(cluster):
    client = redis_connect(cluster.url, decode_responses=True, socket_timeout=2.0)
    yield client
    client.close()


def test_cluster_has_three_masters_each_with_a_replica(cluster):
    masters = cluster.masters()
    assert len(masters) == 3
    assert len(cluster.nodes) == 6
    replicas = [cluster.replicas_of(port) for port in masters]
    assert all(len(found) == 1 for found in replicas)
    assert {port for found in replicas for port in found}.isdisjoint(masters)
    assert cluster.is_ok()
    assert cluster.url.startswith("redis+cluster://127.0.0.1:")
    assert cluster.url.count(",") == 5


def test_redis_connect_reads_cluster_urls(cluster, cluster_client):
    assert isinstance(cluster_client, redis.RedisCluster)
    keys = [f"k{i}" for i in range(30)]
    slots = {cluster_client.keyslot(key) for key in keys}
    owners = {cluster_client.get_node_from_key(key).port for key in keys}
    assert len(owners) == 3  # the keys are spread over every master
    assert len(slots) > 3
    for i, key in enumerate(keys):
        cluster_client.set(key, i)
    assert [cluster_client.get(key) for key in keys] == [str(i) for i in range(30)]
    # The valkey+cluster:// spelling and a single startup node work as well.
    first = cluster.url.removeprefix("redis+cluster://").split(",")[0]
    other = redis_connect(f"valkey+cluster://{first}", decode_responses=True)
    try:
        assert other.get("k7") == "7"
    finally:
        other.close()
    for bad in ("redis+cluster://127.0.0.1", "redis+cluster://127.0.0.1:1/3"):
        with pytest.raises(ValueError):
            redis_connect(bad)


def test_lua_scripts_run_on_keys_of_one_hash_tag(cluster_client):
    scripts = LuaScripts(
        cluster_client,
        {
            "move": "local n = redis.call('DECRBY', KEYS[1], ARGV[1]) "
            "redis.call('INCRBY', KEYS[2], ARGV[1]) return n"
        },
    )
    src, dst = "{camp:1}:stock", "{camp:1}:issued"
    assert cluster_client.keyslot(src) == cluster_client.keyslot(dst)
    cluster_client.set(src, 10)
    assert scripts.call("move", [src, dst], [3]) == 7
    # Every master forgets its scripts: the call loads them again (SCRIPT LOAD goes to all).
    cluster_client.script_flush()
    assert scripts.call("move", [src, dst], [2]) == 5
    assert cluster_client.get(dst) == "5"
    # A second tag lives on another master; the same script runs there too.
    other = next(
        f"{{camp:{i}}}"
        for i in range(2, 100)
        if cluster_client.get_node_from_key(f"{{camp:{i}}}").port
        != cluster_client.get_node_from_key(src).port
    )
    cluster_client.set(f"{other}:stock", 4)
    assert scripts.call("move", [f"{other}:stock", f"{other}:issued"], [1]) == 3
    # Keys of two slots in one script are refused (by the client, before sending), never half-run.
    with pytest.raises(redis.exceptions.RedisClusterException, match="same key slot"):
        scripts.call("move", [src, f"{other}:issued"], [1])


def test_app_on_the_cluster_is_healthy_and_ready(cluster, tmp_path, clock):
    from app import create_app

    app = create_app(
        TestConfig(REDIS_URL=cluster.url, VAR_DIR=tmp_path / "var", SOCKETIO_MESSAGE_QUEUE=False),
        clock=clock,
    )
    assert isinstance(app.extensions["redis"], redis.RedisCluster)
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.get_json()
    assert ready.get_json() == {"status": "ok", "redis": True}
    app.extensions["redis"].close()


def test_a_killed_master_is_replaced_by_its_replica(cluster, cluster_client, clock):
    """Runs last in this module: the cluster is left with a master down.

    Fixes of shoppers whose state lives on the killed master go on after the promotion: the
    engine's pipelines of EVALSHAs (read, commit) reach the promoted replica, load the scripts
    again when it answers NOSCRIPT, and the geofence events land in the partitions.
    """
    victim = cluster.masters()[0]
    (replica,) = cluster.replicas_of(victim)
    key = next(
        f"fo{i}" for i in range(1000) if cluster_client.get_node_from_key(f"fo{i}").port == victim
    )
    cluster_client.set(key, "before")
    catalog = StoreCatalog(cluster_client, clock)
    add_store(catalog)
    engine = LocationEngine(cluster_client, catalog, clock, EngineSettings())
    shoppers = [
        sid
        for sid in (f"u{i}" for i in range(400))
        if cluster_client.get_node_from_key(geo_keys.shopper_state(sid)).port == victim
    ][:5]
    assert shoppers
    far = offset(*SHANGHAI, 0, 1_000)
    for sid in shoppers:
        engine.set_consent(sid, True)
        assert not engine.record_fixes(sid, [fix_at(*far, clock.now())])[0].ignored
    cluster.kill(victim, hard=True)
    wait_for(lambda: cluster.roles().get(replica) == "master", 15, "the replica's promotion")
    assert victim not in cluster.roles()
    live = [node.port for node in cluster.nodes if node.port != victim]
    wait_for(
        lambda: all(cluster.state(port)[0]["cluster_state"] == "ok" for port in live),
        15,
        "cluster_state:ok on every live node",
    )
    assert len(cluster.masters()) == 3

    # The client finds the new master by itself (a command may fail meanwhile).
    wait_for(
        lambda: cluster_client.set(key, "after"),
        15,
        "a write to the promoted replica",
        ignore=(redis.RedisError, redis.exceptions.RedisClusterException),
    )
    assert cluster_client.get(key) == "after"
    assert cluster_client.get_node_from_key(key).port == replica

    # Whatever the promoted replica's script cache holds, make it empty (as after a restart):
    # the engine's pipelines must load the scripts again there by themselves.
    promoted = cluster_client.get_node_from_key(geo_keys.shopper_state(shoppers[0]))
    cluster_client.get_redis_connection(promoted).script_flush()
    clock.advance(30)
    for sid in shoppers:
        (result,) = engine.record_fixes(sid, [fix_at(*SHANGHAI, clock.now())])
        assert not result.ignored, result
        assert [event["kind"] for event in result.events] == ["enter"]
    streamed = [
        json.loads(fields["event"])["shopper_id"]
        for sid in shoppers
        for _id, fields in cluster_client.xrange(geo_keys.shopper_events(sid))
    ]
    assert sorted(set(streamed)) == sorted(shoppers)


def test_a_cluster_starts_on_fresh_ports_when_a_port_is_taken(tmp_path, monkeypatch):
    """A port found free may be taken before the node binds it: the nodes start again."""
    import socket

    from app import redis_supervisor

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    real = redis_supervisor.distinct_free_ports
    calls = []

    def first_with_a_taken_port(count):
        calls.append(count)
        ports = real(count)
        return [port, *ports[1:]] if len(calls) == 1 else ports

    monkeypatch.setattr(redis_supervisor, "distinct_free_ports", first_with_a_taken_port)
    cluster = EmbeddedCluster(tmp_path / "ports", replicas=0, appendonly=False)
    try:
        cluster.start()
        assert len(calls) == 2
        assert port not in cluster.ports and port not in cluster.bus_ports.values()
        assert cluster.is_ok() and len(cluster.masters()) == 3
    finally:
        cluster.stop()
        taken.close()
