"""Run real server processes (gunicorn + gevent, as in production) for tests and benchmarks.

    with start_gunicorn(redis_url, free_port()) as server:
        requests.get(server.url + "/healthz")

Every process shares SECRET_KEY below, so a token one process signs is valid on the others
(and in an in-process helper app built with `TestConfig(SECRET_KEY=SECRET_KEY)`).
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from app.redis_supervisor import free_port

__all__ = [
    "REPO_ROOT",
    "SECRET_KEY",
    "ServerProcess",
    "free_port",
    "process_exists",
    "reported",
    "shown_on_failure",
    "start_dev_server",
    "start_gunicorn",
    "wait_for",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
SECRET_KEY = "footfall-shared-test-secret-key-0123456789abcdef"
assert len(SECRET_KEY) == 48

T = TypeVar("T")


def process_exists(pid: int) -> bool:
    """Tell whether `pid` is a live process (a zombie has exited)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return True
    return state != "Z"


def wait_for(
    condition: Callable[[], T],
    timeout: float = 10.0,
    message: str | Callable[[], str] = "condition",
    interval: float = 0.02,
    max_interval: float = 0.25,
    ignore: tuple[type[BaseException], ...] = (Exception,),
) -> T:
    """Poll `condition` with a short backoff until it returns a truthy value; return that value.

    Exceptions of the `ignore` types count as "not yet" (the last one is chained on timeout);
    any other exception propagates at once.
    """
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    last_exc: BaseException | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except ignore as exc:
            last_exc = exc
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            text = message() if callable(message) else message
            raise TimeoutError(f"timed out after {timeout:.1f} s waiting for {text}") from last_exc
        pause.wait(min(interval, remaining))
        interval = min(interval * 1.5, max_interval)


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """GET a URL on 127.0.0.1 with the standard library; return (status, body)."""
    assert url.startswith("http://")
    hostport, _, path = url[len("http://") :].partition("/")
    host, _, port = hostport.partition(":")
    conn = http.client.HTTPConnection(host, int(port or 80), timeout=timeout)
    try:
        conn.request("GET", "/" + path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@contextmanager
def reported(*servers: ServerProcess | None) -> Iterator[None]:
    """Print the servers' output when the block fails (pytest shows it with the failure)."""
    try:
        yield
    except BaseException:
        for server in servers:
            if server is not None:
                print(f"----- output of {server.name} -----\n{server.output()}")
        raise


@contextmanager
def shown_on_failure(request: Any, *servers: ServerProcess) -> Iterator[None]:
    """In a fixture: print what the servers logged during the test if the test failed.

    A failing test's exception never reaches its fixtures, so this compares pytest's failure
    count; pytest lists a failed test's teardown output with its failure.
    """
    failed = request.session.testsfailed
    marks = [len(server.output(limit=10**9)) for server in servers]
    yield
    if request.session.testsfailed == failed:
        return
    for server, mark in zip(servers, marks, strict=True):
        text = server.output(limit=10**9)[mark:]
        print(f"----- {server.name} during the test -----\n{text[-20_000:] or '(nothing)'}")


class ServerProcess:
    """One server process started by a test: its URL, its log, and a clean stop."""

    def __init__(
        self,
        args: list[str],
        port: int,
        env: Mapping[str, str],
        *,
        cwd: Path = REPO_ROOT,
        name: str = "server",
    ) -> None:
        self.args = list(args)
        self.port = port
        self.env = dict(env)
        self.cwd = cwd
        self.name = name
        self.process: subprocess.Popen | None = None
        self._log = tempfile.TemporaryFile(prefix=f"footfall-{name}-")
        self._final_output = ""

    @property
    def url(self) -> str:
        """Return the base http:// URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """Return the pid of the (master) process."""
        return self.process.pid if self.process else None

    def start(self, timeout: float = 30.0) -> ServerProcess:
        """Launch the process and wait until GET /healthz answers 200."""
        # A session of its own, so a forced stop can take the workers down with the master.
        self.process = subprocess.Popen(
            self.args,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_for(
                self._healthy,
                timeout,
                lambda: f"{self.name} on {self.url}/healthz",
                ignore=(OSError, http.client.HTTPException),
            )
        except BaseException as exc:
            self.stop()
            raise RuntimeError(f"{self.name} did not start:\n{self.output()}") from exc
        return self

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise _Exited(f"{self.name} exited with {self.process.returncode}")
        status, _ = http_get(self.url + "/healthz", timeout=1.0)
        return status == 200

    def running(self) -> bool:
        """Tell whether the process is still alive."""
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, wait up to `timeout`, then SIGKILL the whole process group; return the code."""
        proc = self.process
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _kill_group(proc.pid)
                proc.wait()
        # Workers of a master that died abruptly must not outlive the test either.
        _kill_group(proc.pid)
        return proc.returncode

    def output(self, limit: int = 20_000) -> str:
        """Return the tail of what the process wrote to stdout/stderr (also after close())."""
        if self._log.closed:
            return self._final_output[-limit:]
        self._log.flush()
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-limit:]

    def close(self) -> None:
        """Stop the process and drop its log file (output() keeps answering)."""
        self.stop()
        if not self._log.closed:
            self._final_output = self.output(limit=200_000)
            self._log.close()

    def __enter__(self) -> ServerProcess:
        if self.process is None:
            self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ServerProcess {self.name} {self.url} pid={self.pid}>"


class _Exited(RuntimeError):
    """The server process exited while we waited for it."""


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def gunicorn_env(redis_url: str, extra_env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return the environment of a production-mode server process on `redis_url`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"GUNICORN_CMD_ARGS", "FOOTFALL_VAR_DIR", "REDIS_EMBEDDED_PORT"}
    }
    env.update(
        {
            "FOOTFALL_ENV": "production",
            "SECRET_KEY": SECRET_KEY,
            "REDIS_URL": redis_url,
            "LOG_REQUESTS": "0",
            "PASSWORD_HASH_TIME_COST": "1",
            "PASSWORD_HASH_MEMORY_KIB": "1024",
            "PYTHONUNBUFFERED": "1",
            # Tests write the store catalog from the test process (a helper app) and post
            # fixes to the servers right after: those must see it on their next fix, not
            # within the production bound (README: GEO_CATALOG_CHECK_MS).
            "GEO_CATALOG_CHECK_MS": "0",
        }
    )
    env.update(extra_env or {})
    return env


def start_gunicorn(
    redis_url: str,
    port: int | None = None,
    workers: int = 1,
    extra_env: Mapping[str, str] | None = None,
    *,
    timeout: float = 30.0,
    worker_class: str = "gunicorn_worker.EnvelopeGeventWorker",
) -> ServerProcess:
    """Start gunicorn (by default the worker of gunicorn.conf.py) on 127.0.0.1:<port>; wait
    until healthy."""
    port = port or free_port()
    args = [
        sys.executable,
        "-m",
        "gunicorn",
        "-k",
        worker_class,
        "-w",
        str(workers),
        "-b",
        f"127.0.0.1:{port}",
        "wsgi:app",
    ]
    server = ServerProcess(args, port, gunicorn_env(redis_url, extra_env), name=f"gunicorn:{port}")
    try:
        return server.start(timeout)
    except BaseException:
        server.close()
        raise


def start_dev_server(
    var_dir: Path,
    port: int | None = None,
    *,
    demo: bool = False,
    extra_env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> ServerProcess:
    """Start `python run.py` in development mode: no REDIS_URL, so on its embedded Redis."""
    port = port or free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"REDIS_URL", "SECRET_KEY", "FOOTFALL_ENV", "GUNICORN_CMD_ARGS"}
    }
    env.update(
        {
            "FOOTFALL_VAR_DIR": str(var_dir),
            "REDIS_EMBEDDED_PORT": str(free_port()),
            "LOG_REQUESTS": "0",
            "PASSWORD_HASH_TIME_COST": "1",
            "PASSWORD_HASH_MEMORY_KIB": "1024",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra_env or {})
    args = [sys.executable, "run.py", "--host", "127.0.0.1", "--port", str(port)]
    if not demo:
        args.append("--no-demo")
    server = ServerProcess(args, port, env, name=f"run.py:{port}")
    try:
        return server.start(timeout)
    except BaseException:
        server.close()
        raise
