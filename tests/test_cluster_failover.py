"""Failover under load, with replica waits on (REDIS_WAIT_REPLICAS=1): two gunicorn processes on
a throwaway cluster (3 masters + 3 replicas, AOF, a short node timeout) take a steady load of
coupon issuance, redemptions and live drop claims; a master is killed with SIGKILL (its replica
is promoted), and then the whole cluster is restarted from its AOF. The app answers 503 with
Retry-After meanwhile (never a 500), serves again by itself, and afterwards every acknowledged
coupon, redemption and drop win is counted in Redis: none lost, the caps exact."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from app.redis_supervisor import EmbeddedCluster
from promotions import keys as pkeys
from tests.money_load import MoneyLoad, audit, close_world, make_world, start_load
from tests.servers import wait_for
from tests.two_servers import (  # noqa: F401 - fixtures
    _server_logs,
    servers,
    shared_redis,
)

# The two servers' environment (tests/two_servers.py reads it).
SERVER_ENV = {"REDIS_WAIT_REPLICAS": "1", "REDIS_WAIT_TIMEOUT_MS": "300", "RETRY_AFTER_S": "1"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[EmbeddedCluster]:
    server = EmbeddedCluster(
        tmp_path_factory.mktemp("failover"), node_timeout_ms=1000, appendonly=True
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def redis_server(cluster) -> str:
    """The two servers (tests/two_servers.py) run on this module's cluster."""
    return cluster.url


@pytest.fixture(scope="module")
def world(cluster, servers, tmp_path_factory) -> Iterator[dict]:
    found = make_world(cluster.url, [s.url for s in servers], tmp_path_factory.mktemp("helper"))
    yield found
    close_world(found)


def check(world: dict, load: MoneyLoad, cap: int, quantity: int) -> dict:
    found = audit(world["redis"], load, cap=cap, drop_quantity=quantity)
    assert found["lost"] == [], found
    assert found["oversell"] == 0, found
    assert found["issued"] == cap, found  # the cap is reached exactly, not once more
    assert found["winners"] == found["claimed"] == found["drop_coupons"] == quantity, found
    assert found["acknowledged"]["wins"] == quantity, found
    assert found["acknowledged"]["coupons"] == cap, found
    acknowledged = found["acknowledged"]
    assert acknowledged["redemptions"] == acknowledged["to_redeem"] > 0, found
    # The outage was seen: 503s with Retry-After (socket acks saying so), never a 500.
    answers = found["answers"]
    assert any(" 503 " in f"{k} " for k in answers), found
    assert set(load.ledger.retry_after) == {"1"}, found
    assert not any("500" in k or "internal_error" in k for k in answers), found
    assert found["failures"] == [], found
    return found


def test_a_master_killed_under_load_loses_no_acknowledged_write(cluster, servers, world):
    cap, quantity = 60, 6
    load = start_load(world, cap, quantity, "kill")
    try:
        load.allow(20, claims=quantity - 2)
        wait_for(lambda: load.acknowledged() >= 15, 20, "the load before the kill")
        victim = world["redis"].get_node_from_key(pkeys.meta(world["cid"])).port
        (replica,) = cluster.replicas_of(victim)
        killed = time.monotonic()
        cluster.kill(victim, hard=True)
        load.allow(10**9)
        wait_for(lambda: cluster.roles().get(replica) == "master", 20, "the replica's promotion")
        # As a supervisor would: the dead node comes back and rejoins as the new master's
        # replica, so that writes can be confirmed on a replica again.
        cluster.revive(victim)
        wait_for(lambda: load.successes_since(killed), 30, "answers after the failover")
        load.finish(60)
    finally:
        load.close()
    found = check(world, load, cap, quantity)
    print("failover:", found["unavailable_s"], "s unavailable;", found["answers"])


def test_a_whole_cluster_restart_from_aof_loses_no_acknowledged_write(cluster, servers, world):
    cap, quantity = 120, 5
    load = start_load(world, cap, quantity, "restart")
    try:
        load.allow(16, claims=quantity - 2)
        wait_for(lambda: load.acknowledged() >= 12, 20, "the load before the restart")
        stopped = time.monotonic()
        load.allow(10**9, claims=quantity - 2)  # issuing and redeeming go on meanwhile
        cluster.restart()
        load.allow(10**9)
        wait_for(lambda: load.successes_since(stopped), 30, "answers after the restart")
        load.finish(60)
    finally:
        load.close()
    found = check(world, load, cap, quantity)
    print("restart:", found["unavailable_s"], "s unavailable;", found["answers"])
