"""The README and docs/events.md say what the code does: settings, commands, socket payloads."""

from __future__ import annotations

import json
import re

from .conftest import T0
from .servers import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()
EVENTS = (REPO_ROOT / "docs" / "events.md").read_text()


def section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end != -1 else len(text)]


def settings_read_from_the_environment() -> set[str]:
    names: set[str] = set()
    for path in ("config.py", "gunicorn.conf.py", "app/redis_supervisor.py"):
        source = (REPO_ROOT / path).read_text()
        names |= set(re.findall(r'_env_(?:int|float|bool)\(\s*"([A-Z0-9_]+)"', source))
        names |= set(re.findall(r'os\.environ(?:\.get\(|\[)\s*"([A-Z0-9_]+)"', source))
    return names


def test_every_setting_is_a_row_of_the_configuration_table():
    table = section(README, "## Configuration")
    documented = {
        name
        for row in table.splitlines()
        if row.startswith("| `")
        for name in re.findall(r"`([A-Z0-9_]+)`", row.split("|")[1])
    }
    wanted = settings_read_from_the_environment()
    assert {"GUNICORN_WORKER_CONNECTIONS", "SECRET_KEY", "GAME_TIMEZONE"} <= wanted
    assert wanted - documented == set()


def test_shipped_parts_are_not_called_unfinished():
    for name, text in (("README.md", README), ("docs/events.md", EVENTS)):
        lowered = text.lower()
        for phrase in ("in progress", "still to come", "to come in this issue"):
            assert phrase not in lowered, (name, phrase)


def test_the_readme_tells_how_to_seed_the_demo_into_another_redis(app):
    assert "flask --app app seed-demo" in README
    command = app.cli.commands["seed-demo"]
    assert {p.name for p in command.params} == {"stores"}


def test_a_vote_is_documented_as_the_options_index():
    row = next(line for line in EVENTS.splitlines() if line.startswith("| `vote` |"))
    assert "index" in row and "options" in row


def documented_feedback() -> dict:
    block = section(EVENTS, "### The feedback payload")
    return json.loads(block.split("```json", 1)[1].split("```", 1)[0])


def test_the_feedback_payload_is_documented_as_the_console_receives_it(app, client, auth):
    marketer, _ = auth.headers("marketer")
    host = auth.user("host")
    stream = client.post(
        "/api/streams",
        headers=marketer,
        json={
            "title": "t",
            "brand": "b",
            "playback_url": "https://v.example/x",
            "hosts": [host["user"]["id"]],
            "starts_at": T0,
        },
    ).get_json()
    console = app.extensions["socketio"].test_client(
        app,
        namespace="/host",
        auth={"token": host["token"], "stream_id": stream["id"]},
        flask_test_client=client,
    )
    assert console.emit("start", {}, namespace="/host", callback=True) == {"status": "live"}
    poll = console.emit(
        "poll_start",
        {"question": "Colour?", "options": ["red", "blue"], "duration_s": 60},
        namespace="/host",
        callback=True,
    )
    assert "error" not in poll
    sent = console.emit("feedback", {}, namespace="/host", callback=True)
    documented = documented_feedback()
    assert set(sent) == set(documented)
    for key in (
        "minute",
        "joins_per_min",
        "comments_per_min",
        "likes_per_min",
        "sentiment",
        "totals",
        "poll",
    ):
        assert set(sent[key]) == set(documented[key]), key
