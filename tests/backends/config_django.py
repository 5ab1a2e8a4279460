"""The Django-cache adapter as conformance configurations: over LocMemCache and RedisCache.

Each fixture adds a dedicated ``CACHES`` alias for one test with ``override_settings``
(which also makes Django drop its per-thread cache objects before and after), so tests
never share an alias or its connections.

Round trips: over Redis they are counted on the wire, by the same spy as the Redis
configurations. LocMemCache has no wire; there a "round trip" is one outermost call
into the Django cache object (``get_many``, ``set``, ...), counted by a spy on the
cache class, not by our adapter.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.test import override_settings
from redis.backoff import NoBackoff
from redis.retry import Retry

from drf_instcache.backends.django import DjangoCacheBackend
from drf_instcache.testing.redis_server import RedisServer
from tests.backends.adapters import AdapterUnderTest
from tests.backends.config_redis import RedisWireSpy, redis_server, redis_wire_spy

__all__ = [
    "adapter_django_locmem",
    "adapter_django_redis",
    "django_cache_alias",
    "redis_server",
    "redis_wire_spy",
]

LARGE_MAX_ENTRIES = 1_000_000
"""Django's local-memory cache evicts beyond MAX_ENTRIES (300 by default)."""

_CACHE_API = (
    "add",
    "get",
    "set",
    "touch",
    "delete",
    "has_key",
    "incr",
    "clear",
    "get_many",
    "set_many",
    "delete_many",
)


class DjangoCallSpy:
    """Counts outermost calls into the cache API of one LocMemCache store."""

    def __init__(self, store: object) -> None:
        self.store = store
        self.calls = 0
        self._local = threading.local()

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for name in _CACHE_API:
            monkeypatch.setattr(LocMemCache, name, self._wrap(getattr(LocMemCache, name)))

    def _wrap(self, method: Callable[..., Any]) -> Callable[..., Any]:
        spy = self

        def counted(cache: LocMemCache, *args: Any, **kwargs: Any) -> Any:
            depth = getattr(spy._local, "depth", 0)
            if depth == 0 and cache._cache is spy.store:
                spy.calls += 1
            spy._local.depth = depth + 1
            try:
                return method(cache, *args, **kwargs)
            finally:
                spy._local.depth = depth

        return counted

    def counter(self) -> Callable[[], int]:
        start = self.calls
        return lambda: self.calls - start


@pytest.fixture
def django_cache_alias() -> Iterator[Callable[[dict[str, Any]], str]]:
    """Add a uniquely named ``CACHES`` alias for this test; returns its name."""
    overrides: list[override_settings] = []

    def add(config: dict[str, Any]) -> str:
        from django.conf import settings

        alias = f"instcache-{uuid.uuid4().hex[:8]}"
        override = override_settings(CACHES={**settings.CACHES, alias: config})
        override.enable()
        overrides.append(override)
        return alias

    yield add
    for override in reversed(overrides):
        override.disable()


@pytest.fixture
def adapter_django_locmem(
    django_cache_alias: Callable[[dict[str, Any]], str], monkeypatch: pytest.MonkeyPatch
) -> AdapterUnderTest:
    alias = django_cache_alias(
        {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"instcache-{uuid.uuid4().hex}",
            "OPTIONS": {"MAX_ENTRIES": LARGE_MAX_ENTRIES},
        }
    )
    spy = DjangoCallSpy(caches[alias]._cache)
    spy.install(monkeypatch)

    def make(**kwargs: Any) -> DjangoCacheBackend:
        return DjangoCacheBackend(alias, **kwargs)

    return AdapterUnderTest(
        id="django-locmem", make=make, round_trips=lambda backend: spy.counter()
    )


def django_redis_cache_config(server: RedisServer) -> dict[str, Any]:
    """A Django RedisCache alias on ``server`` with short timeouts and no retries."""
    return {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": server.url,
        "OPTIONS": {
            "socket_timeout": 0.5,
            "socket_connect_timeout": 0.5,
            "retry": Retry(NoBackoff(), 0),
        },
    }


@pytest.fixture
def adapter_django_redis(
    redis_server: RedisServer,
    redis_wire_spy: Callable[[list[int]], RedisWireSpy],
    django_cache_alias: Callable[[dict[str, Any]], str],
) -> Iterator[AdapterUnderTest]:
    alias = django_cache_alias(django_redis_cache_config(redis_server))
    spy = redis_wire_spy([redis_server.port])

    def make(**kwargs: Any) -> DjangoCacheBackend:
        return DjangoCacheBackend(alias, **kwargs)

    yield AdapterUnderTest(
        id="django-redis",
        make=make,
        round_trips=lambda backend: spy.counter(),
        stop=redis_server.stop,
        start=redis_server.start,
    )
    if not redis_server.running:
        redis_server.start()
