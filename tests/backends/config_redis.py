"""Redis single node and Redis Cluster as conformance configurations.

The servers are real ``redis-server`` processes on free loopback ports, started once per
session; each test gets a fresh backend in its own namespace (``make_backend`` in the
conftest). Round trips are counted on the wire side: a spy on redis-py's
``AbstractConnection.send_packed_command``, the one method through which every command
and every pipeline leaves the client, so each count is one request actually written to a
socket. The connection handshake (HELLO/AUTH/SELECT/CLIENT SETINFO, sent once per new
connection) is not counted: it is the cost of a connection, not of a call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from redis.connection import AbstractConnection

from drf_instcache.backends.redis import RedisBackend
from drf_instcache.testing.redis_server import RedisClusterServers, RedisServer
from tests.backends.adapters import AdapterUnderTest
from tests.servers import require_binary


class RedisWireSpy:
    """Counts requests written to the sockets of chosen Redis ports, per port.

    Installed at class level on redis-py's connection for the duration of one test, so
    it sees every client (ours, Django's RedisCache, redis-py's cluster nodes) alike.
    Calls nested inside a handshake or inside another send (a health-check PING) are
    not counted on their own.
    """

    def __init__(self, ports: list[int]) -> None:
        self.ports = set(ports)
        self.sent = 0
        self._lock = threading.Lock()
        self._local = threading.local()

    def _depth(self) -> int:
        return getattr(self._local, "depth", 0)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        spy = self
        original_send = AbstractConnection.send_packed_command
        original_connect = AbstractConnection.connect_check_health

        def send_packed_command(connection: Any, command: Any, *args: Any, **kwargs: Any):
            outermost = spy._depth() == 0
            if (
                outermost
                and getattr(connection, "port", None) in spy.ports
                # The near cache's invalidation connection (its PINGs) serves no call.
                and not getattr(connection, "instcache_tracking", False)
            ):
                with spy._lock:
                    spy.sent += 1
            spy._local.depth = spy._depth() + 1
            try:
                return original_send(connection, command, *args, **kwargs)
            finally:
                spy._local.depth -= 1

        def connect_check_health(connection: Any, *args: Any, **kwargs: Any):
            spy._local.depth = spy._depth() + 1
            try:
                return original_connect(connection, *args, **kwargs)
            finally:
                spy._local.depth -= 1

        monkeypatch.setattr(AbstractConnection, "send_packed_command", send_packed_command)
        monkeypatch.setattr(AbstractConnection, "connect_check_health", connect_check_health)

    def counter(self) -> Callable[[], int]:
        """A callable giving the requests sent since this counter was made."""
        start = self.sent
        return lambda: self.sent - start


def _ensure_running(server: RedisServer | RedisClusterServers) -> None:
    """Bring a server back if a failed outage test left it stopped."""
    if not server.running:
        server.start()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the whole session (never the machine's shared 6379)."""
    require_binary("redis-server")
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def redis_cluster_servers() -> Iterator[RedisClusterServers]:
    """A three-master Redis Cluster for the whole session."""
    require_binary("redis-server")
    require_binary("redis-cli")
    with RedisClusterServers() as cluster:
        yield cluster


@pytest.fixture
def redis_wire_spy(monkeypatch: pytest.MonkeyPatch) -> Callable[[list[int]], RedisWireSpy]:
    """Install a :class:`RedisWireSpy` on the given ports for this test."""

    def install(ports: list[int]) -> RedisWireSpy:
        spy = RedisWireSpy(ports)
        spy.install(monkeypatch)
        return spy

    return install


@pytest.fixture
def adapter_redis(
    redis_server: RedisServer, redis_wire_spy: Callable[[list[int]], RedisWireSpy]
) -> Iterator[AdapterUnderTest]:
    spy = redis_wire_spy([redis_server.port])

    def make(**kwargs: Any) -> RedisBackend:
        return RedisBackend(redis_server.url, **kwargs)

    yield AdapterUnderTest(
        id="redis",
        make=make,
        round_trips=lambda backend: spy.counter(),
        servers=1,
        stop=redis_server.stop,
        start=redis_server.start,
    )
    _ensure_running(redis_server)


@pytest.fixture
def adapter_redis_cluster(
    redis_cluster_servers: RedisClusterServers,
    redis_wire_spy: Callable[[list[int]], RedisWireSpy],
) -> Iterator[AdapterUnderTest]:
    spy = redis_wire_spy(redis_cluster_servers.ports)

    def make(**kwargs: Any) -> RedisBackend:
        options = {"cluster": True, **kwargs.pop("options", {})}
        return RedisBackend(redis_cluster_servers.nodes, options=options, **kwargs)

    yield AdapterUnderTest(
        id="redis-cluster",
        make=make,
        round_trips=lambda backend: spy.counter(),
        servers=len(redis_cluster_servers.ports),
        stop=redis_cluster_servers.stop,
        start=redis_cluster_servers.start,
    )
    _ensure_running(redis_cluster_servers)
