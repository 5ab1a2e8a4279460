"""DRF_INSTCACHE_BACKEND parsing, backend building and the per-process backend."""

from __future__ import annotations

import pytest
from django.test import override_settings

from drf_instcache import settings as instcache_settings
from drf_instcache.backends.locmem import LocMemBackend
from drf_instcache.backends.observed import ObservedBackend
from drf_instcache.breaker import CircuitBreakerBackend
from drf_instcache.exceptions import ImproperlyConfigured
from drf_instcache.settings import build_backend, parse_setting


@pytest.mark.parametrize(
    ("value", "backend", "location", "options"),
    [
        ("redis://127.0.0.1:6379/0", "redis.RedisBackend", "redis://127.0.0.1:6379/0", {}),
        (
            "redis://:secret@10.0.0.1:6380/2?socket_timeout=0.25",
            "redis.RedisBackend",
            "redis://:secret@10.0.0.1:6380/2",
            {"socket_timeout": 0.25},
        ),
        (
            "redis+cluster://h1:7000,h2:7001",
            "redis.RedisBackend",
            ["h1:7000", "h2:7001"],
            {"cluster": True},
        ),
        (
            "memcached://10.0.0.1:11211,10.0.0.2",
            "memcached.MemcachedBackend",
            ["10.0.0.1:11211", "10.0.0.2:11211"],
            {},
        ),
        ("disk:///var/cache/myapi?shards=4", "disk.DiskBackend", "/var/cache/myapi", {"shards": 4}),
        ("django://default", "django.DjangoCacheBackend", "default", {}),
        ("django://", "django.DjangoCacheBackend", "default", {}),
        ("locmem://x", "locmem.LocMemBackend", "x", {}),
    ],
)
def test_urls(value, backend, location, options):
    config = parse_setting(value)
    assert config.backend == f"drf_instcache.backends.{backend}"
    assert config.location == location
    assert config.options == options


def test_prefix_and_timeout_come_from_the_query_string():
    config = parse_setting("locmem://x?prefix=api&timeout=60")
    assert (config.key_prefix, config.timeout) == ("api", 60)
    assert parse_setting("locmem://x?timeout=none").timeout is None


def test_dict_form():
    config = parse_setting(
        {
            "BACKEND": "drf_instcache.backends.locmem.LocMemBackend",
            "LOCATION": "here",
            "OPTIONS": {"a": 1},
            "KEY_PREFIX": "api",
            "TIMEOUT": 30,
        }
    )
    assert (config.location, config.options, config.key_prefix, config.timeout) == (
        "here",
        {"a": 1},
        "api",
        30,
    )
    backend = build_backend({"BACKEND": "locmem://shared", "KEY_PREFIX": "api"})
    assert isinstance(backend, LocMemBackend)
    assert (backend.location, backend.key_prefix) == ("shared", "api")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("ftp://x", "unknown scheme 'ftp'"),
        ("127.0.0.1:6379", "unknown scheme"),
        ("memcached://", "names no server"),
        ("memcached://h:notaport", "is not a number"),
        ("memcached://h:70000", "is not a number"),
        ("disk://", "names no directory"),
        (42, "must be a URL string or a dict"),
        ({"LOCATION": "x"}, "needs 'BACKEND'"),
        ({"BACKEND": "locmem://", "TYPO": 1}, "unknown key"),
        ({"BACKEND": "no.such.module.Backend"}, "cannot import"),
        ({"BACKEND": "drf_instcache.backends.locmem.Nope"}, "has no class 'Nope'"),
        ("locmem://x?prefix=a:b", "KEY_PREFIX"),
        ("locmem://x?timeout=-3", "TIMEOUT"),
    ],
)
def test_bad_settings_are_clear_errors(value, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        build_backend(value)


def test_missing_client_library_names_the_extra(monkeypatch):
    import sys

    # Hide pymemcache and its already-imported submodules, as if it were not installed.
    for name in [name for name in sys.modules if name.split(".")[0] == "pymemcache"]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "pymemcache", None)
    monkeypatch.delitem(sys.modules, "drf_instcache.backends.memcached", raising=False)
    with pytest.raises(ImproperlyConfigured, match=r"drf-instcache\[memcached\]"):
        build_backend("memcached://127.0.0.1:11211")


def test_backend_is_built_once_and_rebuilt_on_setting_change():
    with override_settings(DRF_INSTCACHE_BACKEND="locmem://first?prefix=one"):
        first = instcache_settings.get_backend()
        assert instcache_settings.get_backend() is first
        assert isinstance(first, ObservedBackend)
        assert isinstance(first.backend, CircuitBreakerBackend)
        assert first.key_prefix == "one"
        with override_settings(DRF_INSTCACHE_BACKEND="locmem://second?prefix=two"):
            assert instcache_settings.get_backend().backend.key_prefix == "two"
        assert instcache_settings.get_backend().backend.key_prefix == "one"


def test_circuit_breaker_can_be_disabled_or_tuned():
    with override_settings(DRF_INSTCACHE_CIRCUIT_BREAKER=None):
        backend = instcache_settings.get_backend()
        # No breaker: the observer, on the compression layer (which reads compressed
        # values), on the adapter.
        assert isinstance(backend, ObservedBackend)
        assert not isinstance(backend.backend, CircuitBreakerBackend)
        assert isinstance(backend.backend.backend, LocMemBackend)
    with override_settings(DRF_INSTCACHE_CIRCUIT_BREAKER={"FAILURES": 5}):
        breaker = instcache_settings.get_backend().backend
        assert isinstance(breaker, CircuitBreakerBackend)
        assert (breaker.failures, breaker.reset_after) == (5, 0.5)
        assert breaker.background_probe
    with (
        override_settings(DRF_INSTCACHE_CIRCUIT_BREAKER={"FAILURES": 0}),
        pytest.raises(ImproperlyConfigured, match="FAILURES"),
    ):
        instcache_settings.get_backend()


def test_reset_forgets_the_backend():
    first = instcache_settings.get_backend()
    instcache_settings.reset()
    assert instcache_settings.get_backend() is not first
