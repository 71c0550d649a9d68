"""dev.py, the README entry point: signals reach the server it starts; lint gates the tests."""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
from types import ModuleType

import pytest
import redis

from tests.servers import REPO_ROOT, ServerProcess, free_port, process_exists


def load_dev_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("footfall_dev_script", REPO_ROOT / "dev.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sigint_to_dev_py_alone_stops_the_demo_and_its_embedded_valkey(tmp_path):
    """`kill -INT <pid of dev.py>` (not its process group) must not orphan the embedded server."""
    port, redis_port = free_port(), free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"REDIS_URL", "SECRET_KEY", "FOOTFALL_ENV", "GUNICORN_CMD_ARGS"}
    }
    env.update(
        {
            "FOOTFALL_VAR_DIR": str(tmp_path / "var"),
            "REDIS_EMBEDDED_PORT": str(redis_port),
            "LOG_REQUESTS": "0",
            "PYTHONUNBUFFERED": "1",
        }
    )
    args = [sys.executable, "dev.py", "demo", "--no-demo", "--host", "127.0.0.1"]
    server = ServerProcess([*args, "--port", str(port)], port, env, name="dev.py demo")
    valkey_pid = None
    try:
        server.start(timeout=60)
        client = redis.Redis(host="127.0.0.1", port=redis_port, socket_timeout=2)
        try:
            valkey_pid = int(client.info("server")["process_id"])
        finally:
            client.close()
        assert server.process is not None
        # ServerProcess starts a session of its own: this signal reaches dev.py's pid only.
        os.kill(server.process.pid, signal.SIGINT)
        server.process.wait(30)
        assert not process_exists(valkey_pid), server.output()
    finally:
        server.close()
        if valkey_pid is not None and process_exists(valkey_pid):
            os.kill(valkey_pid, signal.SIGKILL)


BADLY_FORMATTED = "x = {  'a':1 }\n"
PYTEST_RAN = """from pathlib import Path


def test_marks_that_pytest_ran():
    Path(__file__).with_name("pytest-ran").write_text("yes")
"""


@pytest.mark.parametrize(
    ("source", "linted"),
    [
        ("x = {'a': 1}\n", False),  # ruff format prefers double quotes
        (BADLY_FORMATTED, False),
        ("import os\n", False),  # F401: unused import
        ('x = {"a": 1}\n', True),
    ],
    ids=["single-quotes", "unformatted", "unused-import", "clean"],
)
def test_the_test_command_lints_first_and_stops_on_a_lint_failure(
    tmp_path, monkeypatch, source, linted
):
    dev = load_dev_script()
    (tmp_path / "pyproject.toml").write_text((REPO_ROOT / "pyproject.toml").read_text())
    (tmp_path / "module.py").write_text(source)
    (tmp_path / "test_marker.py").write_text(PYTEST_RAN)
    monkeypatch.setattr(dev, "ROOT", tmp_path)
    monkeypatch.setattr(dev, "setup", lambda: None)
    assert (dev.lint() == 0) is linted
    if linted:
        return  # main() would exec pytest in place of this process
    assert dev.main(["test"]) == 1
    assert not (tmp_path / "pytest-ran").exists()
