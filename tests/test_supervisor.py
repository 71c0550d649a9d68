"""The embedded Valkey/Redis supervisor, and how create_app() starts on it; secret-key rules."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from app import create_app
from app.redis_supervisor import EmbeddedRedis, SupervisorError, free_port
from config import Config
from tests.servers import REPO_ROOT, process_exists, wait_for


def client_of(server: EmbeddedRedis) -> redis.Redis:
    return redis.Redis.from_url(server.url, decode_responses=True, socket_timeout=2)


def server_pid(server: EmbeddedRedis) -> int:
    client = client_of(server)
    try:
        return int(client.info("server")["process_id"])
    finally:
        client.close()


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.fixture
def started(tmp_path) -> Iterator[EmbeddedRedis]:
    """An embedded server with the production settings (AOF on), stopped after the test."""
    server = EmbeddedRedis(tmp_path / "var" / "redis", free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_start_runs_a_real_server_with_aof_on_localhost(started, tmp_path):
    assert started.owned and started.process is not None and started.process.poll() is None
    client = client_of(started)
    try:
        assert client.ping() is True
        settings = client.config_get("*")
        assert settings["appendonly"] == "yes"
        assert settings["appendfsync"] == "everysec"
        assert settings["bind"].split() == ["127.0.0.1"]
        assert settings["port"] == str(started.port)
        assert Path(settings["dir"]) == (tmp_path / "var" / "redis").resolve()
        assert server_pid(started) == started.process.pid
    finally:
        client.close()
    assert started.pid_file.read_text().strip() == str(started.process.pid)


def test_second_supervisor_reuses_the_running_server(started):
    pid = server_pid(started)
    second = EmbeddedRedis(started.data_dir, started.port)
    assert second.start() is second
    assert second.owned is False and second.process is None
    assert server_pid(second) == pid
    # Stopping a supervisor that does not own the server leaves it running for its owner.
    second.stop()
    assert client_of(started).ping() is True
    assert started.process.poll() is None


START_AND_WAIT = """
import sys
from app.redis_supervisor import EmbeddedRedis
server = EmbeddedRedis(sys.argv[1], int(sys.argv[2])).start()
print(server.process.pid, flush=True)
sys.stdin.read()
"""


def test_an_orphaned_server_is_adopted_and_stopped_by_the_next_process(tmp_path):
    data_dir, port = tmp_path / "redis", free_port()
    # The owner is killed without a chance to clean up (SIGKILL): its server lives on, orphaned.
    owner = subprocess.Popen(
        [sys.executable, "-c", START_AND_WAIT, str(data_dir), str(port)],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert owner.stdout is not None
    orphan_pid = int(owner.stdout.readline())
    try:
        owner.kill()
        owner.wait()
        owner.stdout.close()
        assert process_exists(orphan_pid)

        again = EmbeddedRedis(data_dir, port)
        again.start()
        assert server_pid(again) == orphan_pid  # reused, not a second server
        assert again.owned is True and again.adopted_pid == orphan_pid
        assert again.owner_file.read_text().strip() == str(os.getpid())
        client = client_of(again)
        client.set("kept", "1")
        client.close()

        again.stop()
        assert again.owned is False
        assert not process_exists(orphan_pid)
        # SHUTDOWN flushed the AOF: the data is there for the next start (on the same port).
        again.start()
        try:
            assert again.process is not None and again.adopted_pid is None
            assert client_of(again).get("kept") == "1"
        finally:
            again.stop()
    finally:
        if process_exists(orphan_pid):
            os.kill(orphan_pid, signal.SIGKILL)
        if owner.stdin:
            owner.stdin.close()


def test_a_server_whose_owner_lives_is_reused_not_adopted(tmp_path):
    data_dir, port = tmp_path / "redis", free_port()
    owner = subprocess.Popen(
        [sys.executable, "-c", START_AND_WAIT, str(data_dir), str(port)],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert owner.stdout is not None and owner.stdin is not None
    pid = int(owner.stdout.readline())
    try:
        second = EmbeddedRedis(data_dir, port)
        second.start()
        assert second.owned is False and second.adopted_pid is None
        second.stop()
        assert process_exists(pid)  # still serving its living owner
    finally:
        owner.stdin.close()  # the owner returns from read() and stops its server at exit
        assert owner.wait(15) == 0
        owner.stdout.close()
    assert not process_exists(pid)


def test_stop_is_clean_and_the_aof_keeps_the_data(started):
    client = client_of(started)
    client.set("survivor", "yes")
    client.hset("hash", mapping={"a": "1", "b": "2"})
    client.close()
    process = started.process
    started.stop()

    assert process.returncode is not None
    assert started.owned is False and started.process is None
    assert port_is_free(started.port)
    aof_files = list(started.data_dir.rglob("appendonly*.aof*"))
    assert aof_files, sorted(p.name for p in started.data_dir.rglob("*"))
    started.stop()  # a second stop is a no-op

    started.start()  # same directory and port
    assert started.owned
    client = client_of(started)
    try:
        assert client.get("survivor") == "yes"
        assert client.hgetall("hash") == {"a": "1", "b": "2"}
    finally:
        client.close()


def test_a_foreign_redis_on_the_port_is_reported(started, tmp_path):
    other = EmbeddedRedis(tmp_path / "elsewhere", started.port)
    with pytest.raises(
        SupervisorError,
        match=rf"port {started.port} is used by another Redis "
        r"server .*REDIS_EMBEDDED_PORT",
    ):
        other.start()
    assert other.owned is False and other.process is None
    assert client_of(started).ping() is True  # the foreign server is left alone


def test_a_foreign_program_on_the_port_is_reported(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        server = EmbeddedRedis(tmp_path / "redis", port)
        with pytest.raises(SupervisorError, match=rf"port {port} exited with .*another program"):
            server.start()
        assert server.owned is False and server.process is None


# -- create_app() on the embedded server, and the secret key ---------------------------------


@pytest.fixture
def env(monkeypatch, tmp_path) -> Path:
    """A development environment with no REDIS_URL and no SECRET_KEY; return VAR_DIR."""
    var_dir = tmp_path / "var"
    for name in ("REDIS_URL", "SECRET_KEY", "FOOTFALL_ENV", "TEST_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FOOTFALL_VAR_DIR", str(var_dir))
    monkeypatch.setenv("REDIS_EMBEDDED_PORT", str(free_port()))
    # In-process: no sweeper thread, no gevent (this process is not monkey-patched).
    monkeypatch.setenv("BACKGROUND_TASKS", "0")
    monkeypatch.setenv("SOCKETIO_ASYNC_MODE", "threading")
    monkeypatch.setenv("LOG_REQUESTS", "0")
    monkeypatch.setenv("PASSWORD_HASH_TIME_COST", "1")
    monkeypatch.setenv("PASSWORD_HASH_MEMORY_KIB", "1024")
    return var_dir


def test_create_app_starts_the_embedded_server_when_redis_url_is_unset(env):
    app = create_app(Config())
    embedded = app.extensions["embedded_redis"]
    try:
        assert embedded.owned
        assert embedded.data_dir == (env / "redis").resolve()
        assert app.config["REDIS_URL"] == embedded.url
        response = app.test_client().get("/readyz")
        assert response.status_code == 200
        assert response.get_json() == {"status": "ok", "redis": True}

        # A second app (another process in real life) reuses the same server.
        again = create_app(Config())
        assert again.extensions["embedded_redis"].owned is False
        assert again.config["REDIS_URL"] == embedded.url
        assert again.test_client().get("/readyz").status_code == 200
        again.extensions["redis"].close()
    finally:
        app.extensions["redis"].close()
        process = embedded.process
        embedded.stop()
    assert process.returncode is not None
    wait_for(lambda: port_is_free(embedded.port), 5, "the embedded server's port to be free")


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (None, r"SECRET_KEY is not set\. In production \(FOOTFALL_ENV=production\)"),
        ("", r"SECRET_KEY is not set"),
        ("too-short", r"SECRET_KEY must be at least 32 characters in production"),
    ],
    ids=["unset", "empty", "short"],
)
def test_production_needs_a_secret_key(env, monkeypatch, redis_server, key, message):
    monkeypatch.setenv("FOOTFALL_ENV", "production")
    monkeypatch.setenv("REDIS_URL", redis_server)
    if key is not None:
        monkeypatch.setenv("SECRET_KEY", key)
    with pytest.raises(RuntimeError, match=message):
        create_app(Config())
    with pytest.raises(RuntimeError, match=message):
        Config().finalize()
    assert not (env / "secret_key").exists()  # production never writes one


def test_development_generates_a_secret_key_once_and_reuses_it(env, monkeypatch, redis_server):
    monkeypatch.setenv("REDIS_URL", redis_server)
    first = create_app(Config())
    key_file = env / "secret_key"
    assert key_file.exists()
    key = key_file.read_text().strip()
    assert len(key) >= 32
    assert first.config["SECRET_KEY"] == key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    second = create_app(Config())
    assert second.config["SECRET_KEY"] == key
    assert key_file.read_text().strip() == key
    # So a token from before the restart still works after it.
    accounts = first.extensions["accounts"]
    user = accounts.create_user("dev@example.test", "correct-horse-1", "marketer")
    token = accounts.open_session(accounts.find_by_email("dev@example.test"))["token"]
    assert second.extensions["accounts"].authenticate(token).user_id == user["id"]
    for app in (first, second):
        app.extensions["redis"].close()
