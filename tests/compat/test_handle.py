"""``BaseCache.cache``: the handle drf-cached-instances code uses for its own entries."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import override_settings

from drf_cached_instances.cache import BaseCache
from drf_instcache.backends.disk import DiskBackend
from drf_instcache.backends.redis import RedisBackend
from drf_instcache.testing.ports import free_port


@pytest.fixture
def handle(tmp_path):
    cache = BaseCache(backend=DiskBackend(str(tmp_path / "cache")))
    assert cache.cache is not None
    return cache.cache


def test_values_come_back_as_they_were_set(handle) -> None:
    values = {
        "count": 41,
        "json": '{"id": 1}',
        "dict": {"a": [1, (2, 3)], "when": dt.datetime(2024, 1, 2, tzinfo=dt.UTC)},
        "bytes": b"\x00raw",
        "none-ish": 0,
    }
    assert handle.set_many(values) == []
    assert handle.get_many([*values, "missing"]) == values
    assert handle.get("count") == 41
    assert handle.get("missing", "default") == "default"
    handle.set("count", 42)
    assert handle.get("count") == 42


def test_delete_and_delete_many_and_clear(handle) -> None:
    handle.set_many({"a": 1, "b": 2, "c": 3})
    handle.delete("a")
    assert handle.get_many(["a", "b", "c"]) == {"b": 2, "c": 3}
    handle.delete_many(["b"])
    assert handle.get_many(["a", "b", "c"]) == {"c": 3}
    handle.clear()
    assert handle.get_many(["c"]) == {}


def test_a_timeout_of_zero_stores_nothing(handle) -> None:
    handle.set("gone", 1, timeout=0)
    assert handle.get("gone") is None


def test_instance_entries_are_visible_as_bytes_through_the_handle(tmp_path) -> None:
    cache = BaseCache(backend=DiskBackend(str(tmp_path / "cache")))
    key = cache.key_for("default", "user", 1)
    cache.backend.set_many({key: b"core bytes"})
    assert cache.cache.get(key) == b"core bytes"


def test_the_handle_is_none_when_caching_is_disabled(tmp_path) -> None:
    cache = BaseCache(backend=DiskBackend(str(tmp_path / "cache")))
    with override_settings(USE_DRF_INSTANCE_CACHE=False):
        assert cache.cache is None
    assert cache.cache is not None
    assert cache.cache is cache.cache  # one handle per backend


def test_an_unreachable_server_never_raises() -> None:
    port = free_port()
    cache = BaseCache(backend=RedisBackend(f"redis://127.0.0.1:{port}/0"))
    handle = cache.cache
    assert handle.get("k", "default") == "default"
    assert handle.get_many(["k"]) == {}
    assert handle.set_many({"k": 1}) == ["k"]
    handle.set("k", 1)
    handle.delete("k")
    handle.clear()
