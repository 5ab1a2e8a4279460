"""A throw-away Redis Sentinel setup on free loopback ports: master, replica, sentinel.

:class:`RedisSentinelServers` starts a master, a replica of it and one sentinel that
monitors them as ``mymaster`` (quorum 1), waits until the replica is in sync and the
sentinel knows both, and can fail the master over to the replica (``SENTINEL FAILOVER``)
so clients can be shown to follow. Nothing is kept on disk beyond a temporary directory.

Shared by the pytest fixtures and the benchmark harness, so it must not import pytest.
Needs ``mirakuru``, ``redis`` and the ``redis-server`` binary (run as ``--sentinel``).
"""

from __future__ import annotations

import itertools
import tempfile
import time
from pathlib import Path
from typing import Self

import redis

from drf_instcache.testing.redis_server import (
    HOST,
    START_TIMEOUT,
    RedisProcess,
    ServerProcess,
    find_binary,
    start_on_free_port,
    start_redis,
)

SERVICE_NAME = "mymaster"
DOWN_AFTER_MS = 1000
"""How long the master may not answer before the sentinel calls it down."""
FAILOVER_TIMEOUT_MS = 5000


class SentinelProcess(ServerProcess):
    """One ``redis-server --sentinel`` on a fixed port, with a config it may rewrite."""

    def __init__(
        self,
        port: int,
        workdir: Path,
        master_port: int,
        password: str | None = None,
        sentinel_password: str | None = None,
    ) -> None:
        workdir.mkdir(exist_ok=True)
        self.config = workdir / "sentinel.conf"
        self.config.write_text(
            "\n".join(
                [
                    f"port {port}",
                    f"bind {HOST}",
                    "daemonize no",
                    f"dir {workdir}",
                    f"logfile {workdir / 'sentinel.log'}",
                    f"sentinel monitor {SERVICE_NAME} {HOST} {master_port} 1",
                    f"sentinel down-after-milliseconds {SERVICE_NAME} {DOWN_AFTER_MS}",
                    f"sentinel failover-timeout {SERVICE_NAME} {FAILOVER_TIMEOUT_MS}",
                    f"sentinel parallel-syncs {SERVICE_NAME} 1",
                    *([f"sentinel auth-pass {SERVICE_NAME} {password}"] if password else []),
                    *([f"requirepass {sentinel_password}"] if sentinel_password else []),
                    "",
                ]
            )
        )
        command = [find_binary("redis-server"), str(self.config), "--sentinel"]
        super().__init__(port, workdir, command, workdir / "sentinel.log")


class RedisSentinelServers:
    """A master, one replica and one sentinel, each on a free loopback port.

    :attr:`url` is the ``redis+sentinel://`` URL of the setup. :meth:`stop` stops the
    master and the replica (the sentinel keeps answering, naming a master that is gone);
    :meth:`start` brings them back on the same ports. :meth:`failover` promotes the
    replica and returns once the sentinel names it and it accepts writes.
    """

    def __init__(self, password: str | None = None, sentinel_password: str | None = None) -> None:
        """``password``: the data servers' ``requirepass``; ``sentinel_password``: the
        sentinel's own."""
        self.password = password
        self.sentinel_password = sentinel_password
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        self._data: list[RedisProcess] = []
        self._sentinel: SentinelProcess | None = None

    # -- addresses --------------------------------------------------------------------
    @property
    def sentinel_port(self) -> int:
        if self._sentinel is None:
            raise RuntimeError("RedisSentinelServers has not been started")
        return self._sentinel.port

    @property
    def data_ports(self) -> list[int]:
        """The ports of the two data servers (master first, as started)."""
        return [process.port for process in self._data]

    @property
    def url(self) -> str:
        """``redis+sentinel://127.0.0.1:<sentinel port>/mymaster/0``."""
        return f"redis+sentinel://{HOST}:{self.sentinel_port}/{SERVICE_NAME}/0"

    @property
    def running(self) -> bool:
        return (
            self._sentinel is not None
            and self._sentinel.running
            and all(process.running for process in self._data)
        )

    def master_port(self) -> int:
        """The port the sentinel currently names as the master's."""
        with self._sentinel_client() as client:
            _host, port = client.sentinel_get_master_addr_by_name(SERVICE_NAME)
        return int(port)

    # -- life cycle -------------------------------------------------------------------
    def start(self) -> Self:
        """Start everything on first use; afterwards restart what was stopped."""
        if self._sentinel is None:
            self._tempdir = tempfile.TemporaryDirectory(prefix="instcache-redis-sentinel-")
            root = Path(self._tempdir.name)
            try:
                for name in ("master", "replica"):
                    (root / name).mkdir()
                password = self.password
                auth = ["--requirepass", password, "--masterauth", password] if password else []
                master = start_redis(root / "master", auth)
                self._data.append(master)
                replica_args = [*auth, "--replicaof", HOST, str(master.port)]
                self._data.append(start_redis(root / "replica", replica_args))
                self._wait_for_replication()
                self._sentinel = _start_sentinel(
                    root, master.port, self.password, self.sentinel_password
                )
                self._wait_until_known()
            except BaseException:
                self.shutdown()
                raise
        else:
            for process in self._data:
                process.start()
            self._sentinel.start()
            self._wait_for_replication()
        return self

    def stop(self) -> None:
        """Stop both data servers (an outage of the whole service); keep the sentinel."""
        for process in self._data:
            process.stop()

    def shutdown(self) -> None:
        """Stop everything for good and remove the directory."""
        if self._sentinel is not None:
            self._sentinel.stop()
        for process in self._data:
            process.stop()
        self._sentinel = None
        self._data = []
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    # -- failover ---------------------------------------------------------------------
    def failover(self) -> int:
        """Promote the replica with ``SENTINEL FAILOVER``; return the new master's port.

        Returns once the sentinel names the new master, it accepts writes, and the old
        master has been turned into its replica (so writes to the old one now fail).
        """
        old = self.master_port()
        with self._sentinel_client() as client:
            client.execute_command("SENTINEL", "FAILOVER", SERVICE_NAME)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            port = self.master_port()
            if self._role(port) == "master" and port != old and self._role(old) == "slave":
                return port
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"failover did not complete in {START_TIMEOUT}s:\n{self._tails()}"
                )
            time.sleep(0.05)

    def kill_master(self) -> int:
        """Stop the current master's process (the sentinel fails over on its own after
        ``DOWN_AFTER_MS``); return the stopped port. :meth:`start` brings it back."""
        port = self.master_port()
        for process in self._data:
            if process.port == port:
                process.stop()
        return port

    # -- waiting ----------------------------------------------------------------------
    def _sentinel_client(self) -> redis.Redis:
        return redis.Redis(
            HOST,
            self.sentinel_port,
            password=self.sentinel_password,
            socket_timeout=2,
            decode_responses=True,
        )

    def _info(self, port: int) -> dict[str, object]:
        try:
            with redis.Redis(HOST, port, password=self.password, socket_timeout=1) as client:
                return dict(client.info("replication"))
        except redis.RedisError:
            return {}

    def _role(self, port: int) -> str | None:
        info = self._info(port)
        return str(info["role"]) if "role" in info else None

    def _wait_for_replication(self) -> None:
        """Block until the replica (whichever it is now) reports its link to the master up."""
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            ports = self.data_ports
            if any(self._info(port).get("master_link_status") == "up" for port in ports):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"replica not in sync after {START_TIMEOUT}s:\n{self._tails()}")
            time.sleep(0.05)

    def _wait_until_known(self) -> None:
        """Block until the sentinel monitors the master and knows its replica."""
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with self._sentinel_client() as client:
                    replicas = client.sentinel_slaves(SERVICE_NAME)
                if any("s_down" not in str(replica.get("flags")) for replica in replicas):
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"sentinel did not see the replica in {START_TIMEOUT}s:\n{self._tails()}"
                )
            time.sleep(0.05)

    def _tails(self) -> str:
        parts = [f"--- redis {process.port}:\n{process.log_tail()}" for process in self._data]
        if self._sentinel is not None:
            parts.append(f"--- sentinel {self._sentinel.port}:\n{self._sentinel.log_tail()}")
        return "\n".join(parts)


def _start_sentinel(
    root: Path, master_port: int, password: str | None, sentinel_password: str | None
) -> SentinelProcess:
    """Start the sentinel on a free port (a fresh folder each attempt: it rewrites its config)."""
    attempts = itertools.count()
    return start_on_free_port(
        lambda port: SentinelProcess(
            port, root / f"sentinel{next(attempts)}", master_port, password, sentinel_password
        ),
        "redis-server --sentinel",
    )
