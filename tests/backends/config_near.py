"""Redis behind the near cache, as a conformance configuration ("redis-near").

The chain is the one ``OPTIONS["NEAR_CACHE"]`` builds (near cache → compression layer →
Redis adapter; the circuit breaker is left out, as for the other configurations), so
every conformance and lease test reads through the near cache and its invalidation
connection. Round trips are counted on the Redis wire side; the near cache's own
invalidation connection is not counted (it serves no call). Each test waits until the
backend's tracking is up, so its reads really go through the near cache rather than
around it.
"""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from drf_instcache.backends.near import NearCacheBackend, parse_config
from drf_instcache.compression import CompressedBackend, CompressionPolicy
from tests.backends.adapters import AdapterUnderTest

NEAR = parse_config({"MAX_BYTES": 64 * 2**20, "HEALTH_CHECK_INTERVAL": 0.5})
TRACKING_DEADLINE = 10.0


def wait_for_tracking(backend: NearCacheBackend, deadline: float = TRACKING_DEADLINE) -> None:
    """Start the backend's tracking and wait (bounded) until it serves from memory."""
    backend.start_tracking()
    end = time.monotonic() + deadline
    while not backend.store.live:
        if time.monotonic() > end:
            raise AssertionError(f"near cache tracking not up after {deadline}s")
        time.sleep(0.005)


@pytest.fixture
def adapter_redis_near(adapter_redis: AdapterUnderTest) -> AdapterUnderTest:
    assert NEAR is not None

    def make(**kwargs) -> NearCacheBackend:
        backend = NearCacheBackend(
            CompressedBackend(adapter_redis.make(**kwargs), CompressionPolicy()), NEAR
        )
        wait_for_tracking(backend)
        return backend

    return replace(adapter_redis, id="redis-near", make=make)
