"""Redis behind Sentinel (a master, its replica, one sentinel) as a conformance configuration.

The processes are real, started once per session on free loopback ports. Round trips are
counted by the Redis wire spy on the two data servers' ports, so the sentinel lookups a
new connection makes (part of connecting, like the handshake) are not counted as calls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from drf_instcache.backends.sentinel import RedisSentinelBackend
from drf_instcache.testing.redis_sentinel import RedisSentinelServers
from tests.backends.adapters import AdapterUnderTest
from tests.backends.config_redis import RedisWireSpy
from tests.servers import require_binary


@pytest.fixture(scope="session")
def redis_sentinel_servers() -> Iterator[RedisSentinelServers]:
    """A master, a replica and a sentinel for the whole session."""
    require_binary("redis-server")
    with RedisSentinelServers() as servers:
        yield servers


@pytest.fixture
def adapter_redis_sentinel(
    redis_sentinel_servers: RedisSentinelServers,
    redis_wire_spy: Callable[[list[int]], RedisWireSpy],
) -> Iterator[AdapterUnderTest]:
    spy = redis_wire_spy(redis_sentinel_servers.data_ports)

    def make(**kwargs: Any) -> RedisSentinelBackend:
        return RedisSentinelBackend(
            [f"127.0.0.1:{redis_sentinel_servers.sentinel_port}"],
            options={"service_name": "mymaster", **kwargs.pop("options", {})},
            **kwargs,
        )

    yield AdapterUnderTest(
        id="redis-sentinel",
        make=make,
        round_trips=lambda backend: spy.counter(),
        servers=1,
        stop=redis_sentinel_servers.stop,
        start=redis_sentinel_servers.start,
    )
    if not redis_sentinel_servers.running:
        redis_sentinel_servers.start()
