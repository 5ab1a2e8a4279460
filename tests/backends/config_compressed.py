"""Compressed variants: the conformance suite again, through the compression layer.

Each wraps another configuration's backends in :class:`CompressedBackend` with the
documented default policy (zstd over 1024 bytes), so the suite's large values are stored
compressed and its small ones as they are, on a real server. Round trips are still counted
on the wrapped configuration's wire side. Item-limit tests are not generated for these:
a highly compressible value over memcached's limit fits once compressed.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from drf_instcache.compression import CompressedBackend, CompressionPolicy
from tests.backends.adapters import AdapterUnderTest

POLICY = CompressionPolicy()


def _compressed(base: AdapterUnderTest, config_id: str) -> AdapterUnderTest:
    def make(**kwargs) -> CompressedBackend:
        return CompressedBackend(base.make(**kwargs), POLICY)

    return replace(
        base,
        id=config_id,
        make=make,
        round_trips=lambda backend: base.round_trips(backend.backend),
        item_limit=None,
    )


@pytest.fixture
def adapter_redis_zstd(adapter_redis: AdapterUnderTest) -> AdapterUnderTest:
    return _compressed(adapter_redis, "redis-zstd")


@pytest.fixture
def adapter_memcached_zstd(adapter_memcached: AdapterUnderTest) -> AdapterUnderTest:
    return _compressed(adapter_memcached, "memcached-zstd")


@pytest.fixture
def adapter_disk_zstd(adapter_disk: AdapterUnderTest) -> AdapterUnderTest:
    return _compressed(adapter_disk, "disk-zstd")


@pytest.fixture
def adapter_locmem_zstd(adapter_locmem: AdapterUnderTest) -> AdapterUnderTest:
    return _compressed(adapter_locmem, "locmem-zstd")
