"""Live rooms across two real server processes: a host on one reaches viewers on both, drops
stay exactly N with claims on both, and the viewer count spans the processes."""

from __future__ import annotations

import os
import queue
import signal
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import socketio

from promotions.models import CampaignIn, OfferIn
from tests.servers import wait_for
from tests.test_processes import (  # noqa: F401 - own_redis and own_server are fixtures
    bearer,
    make_helper_app,
    own_redis,
    own_server,
    session_for,
    start_servers,
    stop_servers,
)
from tests.two_servers import (  # noqa: F401 - fixtures
    _server_logs,
    helper_app,
    servers,
    shared_redis,
)


class Client:
    """A python-socketio client on one namespace over the websocket transport."""

    def __init__(self, url: str, namespace: str, auth: dict) -> None:
        self.namespace = namespace
        self.events: queue.Queue[tuple[str, dict]] = queue.Queue()
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("*", lambda name, data: self.events.put((name, data)), namespace=namespace)
        self.sio.connect(
            url, transports=["websocket"], namespaces=[namespace], auth=auth, wait_timeout=10
        )

    def call(self, event: str, data: dict | None = None) -> dict:
        return self.sio.call(event, data or {}, namespace=self.namespace, timeout=15)

    def wait_for(self, name: str, timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                got, data = self.events.get(timeout=max(0.05, deadline - time.monotonic()))
            except queue.Empty:
                break
            if got == name:
                return data
        raise AssertionError(f"no {name!r} within {timeout} s")

    def close(self) -> None:
        self.sio.disconnect()


def schedule_stream(base_url: str, token: str, hosts: list[str], **extra) -> str:
    """Schedule a stream over REST as the caller of `token`; return its id."""
    response = requests.post(
        base_url + "/api/streams",
        headers=bearer(token),
        timeout=10,
        json={
            "title": "t",
            "brand": "b",
            "playback_url": "https://v.example/x",
            "hosts": hosts,
            "starts_at": time.time(),
            **extra,
        },
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


@pytest.fixture(scope="module")
def stream(helper_app, servers) -> dict:
    promos = helper_app.extensions["promotions"]
    now = time.time()
    cid = promos.campaigns.create(
        CampaignIn(name="live", starts_at=now - 60, ends_at=now + 3600), actor="t"
    )["id"]
    oid = promos.campaigns.create_offer(
        cid,
        OfferIn(name="flash", kind="amount_off", amount_off_fen=1000, channels=["live_drop"]),
        actor="t",
    )["id"]
    promos.campaigns.transition(cid, "scheduled", actor="t")
    host = session_for(helper_app, "host")
    marketer = session_for(helper_app, "marketer")
    sid = schedule_stream(servers[1].url, marketer["token"], [host["user"]["id"]], campaign_id=cid)
    return {"id": sid, "oid": oid, "host": host}


def test_a_host_on_one_process_reaches_viewers_on_both_and_drops_stay_exactly_n(
    servers, helper_app, stream
):
    server_a, server_b = servers
    host = Client(
        server_a.url, "/host", {"token": stream["host"]["token"], "stream_id": stream["id"]}
    )
    viewers = []
    try:
        for i in range(6):
            session = session_for(helper_app, "shopper")
            viewer = Client(servers[i % 2].url, "/live", {"token": session["token"]})
            joined = viewer.call("join", {"stream_id": stream["id"]})
            assert "state" in joined, joined
            viewers.append(viewer)
        # Both processes count the viewers in one presence set.
        assert host.call("feedback")["viewers"] == 6
        assert host.call("start") == {"status": "live"}
        for viewer in viewers:
            assert viewer.wait_for("stream_status")["status"] == "live"
        drop = host.call("drop", {"offer_id": stream["oid"], "quantity": 3, "window_s": 60})
        for viewer in viewers:
            assert viewer.wait_for("drop")["id"] == drop["id"]
        with ThreadPoolExecutor(6) as pool:
            acks = list(pool.map(lambda v: v.call("claim", {"drop_id": drop["id"]}), viewers))
        outcomes = Counter(a.get("outcome") or a["error"]["code"] for a in acks)
        assert outcomes == {"won": 3, "SOLD_OUT": 3}
        assert all(a["coupon"]["source"]["channel"] == "live_drop" for a in acks if "coupon" in a)
        for viewer in viewers:
            viewer.wait_for("drop_sold_out")
        # A viewer leaving on one process is seen by the other's count.
        viewers.pop().close()
        wait_for(lambda: host.call("feedback")["viewers"] == 5, 10, "the count after a leave")
    finally:
        for viewer in viewers:
            viewer.close()
        host.close()


def test_a_host_taken_off_a_stream_on_one_process_loses_the_console_on_the_other(
    servers, helper_app
):
    server_a, server_b = servers
    keeps, loses = session_for(helper_app, "host"), session_for(helper_app, "host")
    marketer = session_for(helper_app, "marketer")
    hosts = [keeps["user"]["id"], loses["user"]["id"]]
    sid = schedule_stream(server_b.url, marketer["token"], hosts)
    staying = Client(server_b.url, "/host", {"token": keeps["token"], "stream_id": sid})
    leaving = Client(server_a.url, "/host", {"token": loses["token"], "stream_id": sid})
    try:
        assert "text" in leaving.call("announce", {"text": "soon"})
        changed = requests.patch(
            f"{server_b.url}/api/streams/{sid}",
            timeout=10,
            headers=bearer(marketer["token"]),
            json={"hosts": [keeps["user"]["id"]]},
        )
        assert changed.status_code == 200, changed.text
        wait_for(lambda: not leaving.sio.connected, 10, "the removed host's console closed")
        assert staying.sio.connected and staying.call("start") == {"status": "live"}
        # Connecting again is refused too.
        with pytest.raises(socketio.exceptions.ConnectionError):
            Client(server_a.url, "/host", {"token": loses["token"], "stream_id": sid})
    finally:
        staying.close()
        leaving.close()


def test_the_viewer_count_heals_when_a_process_dies(servers, helper_app, shared_redis):
    from tests.servers import start_gunicorn

    server_a, _ = servers
    host = session_for(helper_app, "host")
    sid = schedule_stream(server_a.url, host["token"], [host["user"]["id"]])
    # A third process with the default settings: a connection counts for 30 s after its last
    # refresh, but a process's viewers only while it says it is alive (every second, 5 s).
    doomed = start_gunicorn(shared_redis)
    sessions = [session_for(helper_app, "shopper") for _ in range(3)]
    clients = []
    try:
        for server, session in zip((server_a, doomed, doomed), sessions, strict=True):
            viewer = Client(server.url, "/live", {"token": session["token"]})
            viewer.call("join", {"stream_id": sid})
            clients.append(viewer)
        console = Client(server_a.url, "/host", {"token": host["token"], "stream_id": sid})
        clients.append(console)
        assert console.call("feedback")["viewers"] == 3
        os.killpg(doomed.process.pid, signal.SIGKILL)  # no goodbye, no leave events
        # One of the dead process's viewers reconnects through A at once: still one viewer.
        again = Client(server_a.url, "/live", {"token": sessions[1]["token"]})
        clients.append(again)
        assert again.call("join", {"stream_id": sid})["state"]["viewers"] == 3
        # Well within the 30 s connection TTL, the count is right again.
        wait_for(
            lambda: console.call("feedback")["viewers"] == 2,
            12,
            "the count without the dead process's viewers",
        )
        assert console.call("feedback")["peak_viewers"] == 3  # never 4
    finally:
        for client in clients:
            try:
                client.close()
            except Exception:
                pass
        doomed.close()


def test_a_room_carries_on_after_a_redis_outage(own_redis, own_server, tmp_path):  # noqa: F811
    from tests.test_processes import queue_subscribers

    helper = make_helper_app(own_redis.url, tmp_path)
    host = session_for(helper, "host")
    viewer_session = session_for(helper, "shopper")
    sid = schedule_stream(own_server.url, host["token"], [host["user"]["id"]])
    console = Client(own_server.url, "/host", {"token": host["token"], "stream_id": sid})
    viewer = Client(own_server.url, "/live", {"token": viewer_session["token"]})
    try:
        assert console.call("start") == {"status": "live"}
        viewer.call("join", {"stream_id": sid})
        wait_for(lambda: queue_subscribers(own_redis.url) == 1, 10, "the queue subscription")

        own_redis.stop()
        ack = viewer.call("comment", {"text": "anyone there?"})
        assert ack["error"]["code"] == "service_unavailable"
        assert console.call("announce", {"text": "x"})["error"]["code"] == "service_unavailable"

        own_redis.start()  # the AOF brings the stream and the sessions back
        wait_for(lambda: queue_subscribers(own_redis.url) == 1, 20, "the queue re-subscription")
        wait_for(lambda: "error" not in console.call("feedback"), 15, "storage back")
        assert "text" in console.call("announce", {"text": "we are back"})
        heard = viewer.wait_for("announcement", timeout=10)
        assert heard["text"] == "we are back" and isinstance(heard["offset"], int)
        assert viewer.sio.connected and console.sio.connected
    finally:
        viewer.close()
        console.close()


def offsets_heard(client: Client, name: str) -> list[int]:
    """Drain what a client heard so far; return the offsets of the `name` events in order."""
    heard = []
    while True:
        try:
            got, data = client.events.get_nowait()
        except queue.Empty:
            return heard
        if got == name:
            heard.append(data["offset"])


def test_every_viewer_hears_every_offset_once_across_a_redis_outage(
    own_redis,  # noqa: F811
    tmp_path,
):
    """The host on A announces as soon as Redis is back, before B has subscribed again: B's
    viewers get those announcements from the history once B is subscribed, and nobody gets
    one twice (B hears some both ways)."""
    from tests.test_processes import queue_subscribers

    server_a, server_b = start_servers(own_redis.url, 2)
    helper = make_helper_app(own_redis.url, tmp_path)
    host = session_for(helper, "host")
    clients: list[Client] = []
    try:
        sid = schedule_stream(server_a.url, host["token"], [host["user"]["id"]])
        console = Client(server_a.url, "/host", {"token": host["token"], "stream_id": sid})
        clients.append(console)
        assert console.call("start") == {"status": "live"}
        viewers = []
        for server in (server_a, server_b, server_b):
            viewer = Client(server.url, "/live", {"token": session_for(helper, "shopper")["token"]})
            clients.append(viewer)
            viewer.call("join", {"stream_id": sid})
            viewers.append(viewer)
        wait_for(lambda: queue_subscribers(own_redis.url) == 2, 10, "both processes subscribed")
        first = console.call("announce", {"text": "before"})
        assert "text" in first, first
        for viewer in viewers:
            assert viewer.wait_for("announcement")["text"] == "before"

        own_redis.stop()
        assert console.call("announce", {"text": "x"})["error"]["code"] == "service_unavailable"
        own_redis.start()  # the AOF brings the stream and the sessions back
        # Announce the moment A's storage answers: B has not subscribed again yet.
        wait_for(lambda: "error" not in console.call("feedback"), 15, "storage back")
        for i in range(5):
            ack = console.call("announce", {"text": f"back {i}"})
            assert "text" in ack, ack
        wait_for(lambda: queue_subscribers(own_redis.url) == 2, 20, "both subscribed again")
        # One more after both are subscribed: whoever heard it has heard everything before it.
        assert "text" in console.call("announce", {"text": "last"})
        # The offsets the history gave the announcements after "before" (other events, such
        # as a ticker's `likes`, take offsets of their own).
        history = helper.extensions["live"].history.since(sid, 0).events
        announced = [e["offset"] for e in history if e["event"] == "announcement"][1:]
        assert len(announced) == 6, history
        for viewer in viewers:
            heard: list[int] = []

            def all_heard(viewer: Client = viewer, heard: list[int] = heard) -> bool:
                heard.extend(offsets_heard(viewer, "announcement"))
                return bool(heard) and len(set(heard)) >= 6

            wait_for(all_heard, 20, lambda h=heard: f"six announcements, heard {h}")
            heard.extend(offsets_heard(viewer, "announcement"))
            assert len(heard) == len(set(heard)), f"an offset twice: {heard}"
            assert sorted(heard) == announced, (heard, history)
        assert all(client.sio.connected for client in clients)
    finally:
        for client in clients:
            try:
                client.close()
            except Exception:
                pass
        stop_servers([server_a, server_b])
