"""Throw-away Redis servers on free loopback ports, for tests and benchmarks.

:class:`RedisServer` runs one ``redis-server``; :class:`RedisClusterServers` runs three
cluster masters joined with ``redis-cli --cluster create``. Both keep nothing on disk
beyond a temporary directory (no RDB snapshots, no AOF), listen only on 127.0.0.1, and
can be stopped and started again on the same port(s) so outage handling can be tested
against a real server that really went away.

This module is shared by the pytest fixtures and the benchmark harness, so it must not
import pytest. It needs ``mirakuru`` and ``redis`` (both in the ``test`` extra) and the
``redis-server``/``redis-cli`` binaries.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Self, TypeVar

import redis
from mirakuru import TCPExecutor
from mirakuru.exceptions import AlreadyRunning, ProcessExitedWithError
from mirakuru.exceptions import TimeoutExpired as MirakuruTimeout

from drf_instcache.testing.ports import free_port

HOST = "127.0.0.1"
CLUSTER_BUS_OFFSET = 10000
"""Redis Cluster nodes also listen on their client port plus this offset."""

START_TIMEOUT = 15.0
"""Seconds a server may take to accept connections (or a cluster to report ok)."""

_START_ATTEMPTS = 3
"""A free port can be taken by someone else before we bind it: retry on a new port."""


def find_binary(name: str) -> str:
    """Return the path of a Redis binary, or raise FileNotFoundError naming the package."""
    path = shutil.which(name)
    if path is None:
        candidate = Path("/usr/bin") / name
        if candidate.exists():
            path = str(candidate)
    if path is None:
        raise FileNotFoundError(f"{name} is not installed (apt-get install redis-server)")
    return path


class ServerProcess:
    """One server process bound to a fixed port, restartable in place.

    ``command`` writes its log to ``log``; standard output is dropped (a pipe nobody
    reads could fill up and block the server).
    """

    def __init__(self, port: int, workdir: Path, command: list[str], log: Path) -> None:
        self.port = port
        self.workdir = workdir
        self.log = log
        self._executor = TCPExecutor(
            command,
            host=HOST,
            port=port,
            timeout=START_TIMEOUT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    @property
    def running(self) -> bool:
        return self._executor.running()

    @property
    def pid(self) -> int | None:
        process = self._executor.process
        return process.pid if process is not None and self.running else None

    def start(self) -> None:
        if not self.running:
            with contextlib.suppress(ProcessExitedWithError):
                self._executor.stop()  # forget a process that was killed (SIGKILL)
            self._executor.start()

    def stop(self) -> None:
        if self.running:
            self._executor.stop()

    def kill(self) -> None:
        """End the server with SIGKILL: no shutdown, connections cut mid-flight."""
        if self.running:
            self._executor.kill(wait=True, sig=signal.SIGKILL)

    def log_tail(self, lines: int = 20) -> str:
        """The end of the server's log, to explain a failed start."""
        if not self.log.exists():
            return "(no log written)"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


class RedisProcess(ServerProcess):
    """One ``redis-server`` that keeps nothing on disk."""

    def __init__(self, port: int, workdir: Path, extra_args: list[str]) -> None:
        log = workdir / f"redis-{port}.log"
        command = [
            find_binary("redis-server"),
            *("--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"),
            *("--dir", str(workdir), "--logfile", str(log), "--daemonize", "no"),
            *extra_args,
        ]
        super().__init__(port, workdir, command, log)


P = TypeVar("P", bound=ServerProcess)


def start_on_free_port(make: Callable[[int], P], what: str, bus_port: bool = False) -> P:
    """Start ``make(port)`` on a port found free, retrying when another process wins it."""
    last_error: Exception | None = None
    for _ in range(_START_ATTEMPTS):
        port = free_port(HOST, also_free_at_offset=CLUSTER_BUS_OFFSET if bus_port else None)
        process = make(port)
        try:
            process.start()
        except (AlreadyRunning, ProcessExitedWithError, MirakuruTimeout) as error:
            process.stop()
            last_error = error
            continue
        return process
    raise RuntimeError(f"could not start {what} on a free port: {last_error}")


def start_redis(workdir: Path, extra_args: list[str], *, bus_port: bool = False) -> RedisProcess:
    """A ``redis-server`` on a free port (and a free cluster bus port with ``bus_port``)."""
    return start_on_free_port(
        lambda port: RedisProcess(port, workdir, extra_args), "redis-server", bus_port
    )


class RedisServer:
    """One redis-server on a free loopback port, with its data in a temporary directory.

    ``stop()`` and ``start()`` keep the port, so clients configured with :attr:`url` see
    an outage and then the same server coming back (empty, since nothing is persisted).
    """

    def __init__(self, extra_args: list[str] | None = None) -> None:
        """``extra_args`` are more ``redis-server`` flags, e.g. ``["--requirepass", "s"]``."""
        self.extra_args = list(extra_args or [])
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        self._process: RedisProcess | None = None

    @property
    def port(self) -> int:
        if self._process is None:
            raise RuntimeError("RedisServer has not been started")
        return self._process.port

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://{HOST}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running

    @property
    def pid(self) -> int:
        """The server's process id (to pause it with SIGSTOP and simulate a hung server)."""
        if self._process is None or self._process.pid is None:
            raise RuntimeError("RedisServer is not running")
        return self._process.pid

    def start(self) -> Self:
        """Start the server; the first start picks the port, later ones reuse it."""
        if self._process is None:
            self._tempdir = tempfile.TemporaryDirectory(prefix="instcache-redis-")
            try:
                self._process = start_redis(Path(self._tempdir.name), self.extra_args)
            except BaseException:
                self.shutdown()
                raise
        else:
            self._process.start()
        return self

    def stop(self) -> None:
        """Stop the server, keeping its port and directory for a later :meth:`start`."""
        if self._process is not None:
            self._process.stop()

    def kill(self) -> None:
        """Kill the server (SIGKILL), keeping its port for a later :meth:`start`."""
        if self._process is not None:
            self._process.kill()

    def shutdown(self) -> None:
        """Stop the server for good and remove its directory."""
        self.stop()
        self._process = None
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()


class RedisClusterServers:
    """A Redis Cluster of three masters (no replicas) on free loopback ports.

    Every node's client port and bus port (client port + 10000) are free when chosen.
    ``stop()`` stops all nodes and ``start()`` brings them back on the same ports; each
    node keeps its ``nodes-<port>.conf``, so the cluster re-forms with the same slot map
    and :meth:`start` returns once every node reports ``cluster_state:ok``.
    """

    NODES = 3

    def __init__(self, node_timeout_ms: int = 500) -> None:
        self.node_timeout_ms = node_timeout_ms
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        self._processes: list[RedisProcess] = []

    @property
    def ports(self) -> list[int]:
        if not self._processes:
            raise RuntimeError("RedisClusterServers has not been started")
        return [process.port for process in self._processes]

    @property
    def nodes(self) -> list[str]:
        """``["127.0.0.1:<port>", ...]`` for every master."""
        return [f"{HOST}:{port}" for port in self.ports]

    @property
    def url(self) -> str:
        """``redis+cluster://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3``."""
        return "redis+cluster://" + ",".join(self.nodes)

    @property
    def running(self) -> bool:
        return bool(self._processes) and all(process.running for process in self._processes)

    def _node_args(self) -> list[str]:
        # Each node has its own --dir, where the relative nodes.conf is kept.
        return [
            "--cluster-enabled",
            "yes",
            "--cluster-node-timeout",
            str(self.node_timeout_ms),
            "--cluster-config-file",
            "nodes.conf",
        ]

    def start(self) -> Self:
        """Create the cluster on first start; restart the same nodes afterwards."""
        if not self._processes:
            self._tempdir = tempfile.TemporaryDirectory(prefix="instcache-redis-cluster-")
            root = Path(self._tempdir.name)
            try:
                for index in range(self.NODES):
                    workdir = root / f"node{index}"
                    workdir.mkdir()
                    self._processes.append(start_redis(workdir, self._node_args(), bus_port=True))
                self._create_cluster()
            except BaseException:
                self.shutdown()
                raise
        else:
            for process in self._processes:
                process.start()
        self._wait_until_ok()
        return self

    def _create_cluster(self) -> None:
        command = [
            find_binary("redis-cli"),
            "--cluster",
            "create",
            *self.nodes,
            "--cluster-replicas",
            "0",
            "--cluster-yes",
        ]
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=START_TIMEOUT, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"redis-cli --cluster create failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )

    def _wait_until_ok(self) -> None:
        """Block until every node sees all 16384 slots served and the cluster ok."""
        deadline = time.monotonic() + START_TIMEOUT
        pending = list(self.ports)
        while pending:
            pending = [port for port in pending if not _cluster_ok(port)]
            if not pending:
                return
            if time.monotonic() > deadline:
                tails = "\n".join(
                    f"--- node {process.port}:\n{process.log_tail()}"
                    for process in self._processes
                    if process.port in pending
                )
                raise RuntimeError(f"Redis Cluster not ok after {START_TIMEOUT}s:\n{tails}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop every node, keeping ports and ``nodes.conf`` for a later :meth:`start`."""
        for process in self._processes:
            process.stop()

    def shutdown(self) -> None:
        """Stop the cluster for good and remove its directory."""
        self.stop()
        self._processes = []
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()


def _cluster_ok(port: int) -> bool:
    """True when the node on ``port`` reports a healthy cluster covering every slot."""
    client = redis.Redis(host=HOST, port=port, socket_timeout=1, socket_connect_timeout=1)
    try:
        raw = client.execute_command("CLUSTER INFO")
    except redis.RedisError:
        return False
    finally:
        client.close()
    if isinstance(raw, bytes):
        raw = raw.decode()
    if isinstance(raw, str):
        info = dict(line.split(":", 1) for line in raw.splitlines() if ":" in line)
    else:
        info = {str(k): str(v) for k, v in dict(raw).items()}
    return (
        info.get("cluster_state") == "ok"
        and info.get("cluster_slots_ok") == "16384"
        and info.get("cluster_known_nodes") == str(RedisClusterServers.NODES)
    )
