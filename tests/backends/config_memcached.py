"""Memcached, one server and three, as conformance configurations.

The servers are real memcached processes on free loopback ports, started once per
session (``-I 2m`` so 1 MB values fit). Round trips are counted on the wire: each
backend gets a socket module whose sockets count ``sendall`` calls, and pymemcache
sends every request (a multi-get, a pipelined batch of sets or deletes) with exactly one
``sendall``.
"""

from __future__ import annotations

import socket
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from drf_instcache.backends.memcached import ITEM_OVERHEAD, MemcachedBackend
from drf_instcache.keys import MAX_KEY_LENGTH
from drf_instcache.testing.memcached_server import MemcachedServer
from tests.backends.adapters import AdapterUnderTest
from tests.servers import require_binary

__all__ = [
    "adapter_memcached",
    "adapter_memcached_3",
    "memcached_server",
    "memcached_servers_3",
]


class _CountingSocket(socket.socket):
    """A real socket that tells its module about every request it sends."""

    counter: CountingSocketModule

    def sendall(self, data: Any, *args: Any) -> None:
        self.counter.requests += 1
        return super().sendall(data, *args)

    def send(self, data: Any, *args: Any) -> int:
        self.counter.requests += 1
        return super().send(data, *args)


class CountingSocketModule:
    """Stands in for the ``socket`` module in pymemcache; counts requests sent."""

    def __init__(self) -> None:
        self.requests = 0

    def socket(self, *args: Any, **kwargs: Any) -> socket.socket:
        sock = _CountingSocket(*args, **kwargs)
        sock.counter = self
        return sock

    def __getattr__(self, name: str) -> Any:
        return getattr(socket, name)


def _memcached_adapter(
    config_id: str, servers: list[MemcachedServer], stop: Any, start: Any
) -> AdapterUnderTest:
    spies: weakref.WeakKeyDictionary[MemcachedBackend, CountingSocketModule] = (
        weakref.WeakKeyDictionary()
    )
    addresses = [server.address for server in servers]

    def make(**kwargs: Any) -> MemcachedBackend:
        spy = CountingSocketModule()
        options = {"socket_module": spy, **kwargs.pop("options", {})}
        backend = MemcachedBackend(addresses, options=options, **kwargs)
        spies[backend] = spy
        return backend

    def round_trips(backend: MemcachedBackend):
        spy = spies[backend]
        return lambda: spy.requests

    # Any key, even one at the 250-byte key limit, takes a value this large.
    item_limit = min(server.item_size_bytes for server in servers) - MAX_KEY_LENGTH - ITEM_OVERHEAD
    return AdapterUnderTest(
        id=config_id,
        make=make,
        round_trips=round_trips,
        servers=len(servers),
        stop=stop,
        start=start,
        item_limit=item_limit,
        extra={"servers": servers},
    )


@pytest.fixture(scope="session")
def memcached_server() -> Iterator[MemcachedServer]:
    binary = require_binary("memcached")
    with MemcachedServer(binary=binary) as server:
        yield server


@pytest.fixture(scope="session")
def memcached_servers_3() -> Iterator[list[MemcachedServer]]:
    binary = require_binary("memcached")
    servers = [MemcachedServer(binary=binary) for _ in range(3)]
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def adapter_memcached(memcached_server: MemcachedServer) -> AdapterUnderTest:
    memcached_server.start()  # no-op when running; revives it after a failed outage test
    return _memcached_adapter(
        "memcached", [memcached_server], memcached_server.stop, memcached_server.start
    )


@pytest.fixture
def adapter_memcached_3(memcached_servers_3: list[MemcachedServer]) -> AdapterUnderTest:
    def stop() -> None:
        for server in memcached_servers_3:
            server.stop()

    def start() -> None:
        for server in memcached_servers_3:
            server.start()

    start()  # no-op when running; revives them after a failed outage test
    return _memcached_adapter("memcached-3", memcached_servers_3, stop, start)
