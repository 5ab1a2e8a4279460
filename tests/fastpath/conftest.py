"""Fixtures for the fast-path tests: the API tests' database, backends and data.

Every test runs against a real database (committed transactions, so the invalidation
receivers' ``on_commit`` work runs) and a fresh namespace of a real cache backend:
locmem unless parametrized with :data:`every_backend` (locmem, disk, Redis, Memcached).
The URL conf is :mod:`tests.fastpath.urls`: the example API plus test-only viewsets.
"""

from __future__ import annotations

import pytest

from drf_instcache.backends.locmem import LocMemBackend
from tests.api.conftest import (  # noqa: F401  (fixtures)
    BACKENDS,
    Polls,
    api,
    cache_namespace,
    disk_cache_directory,
    every_backend,
    instcache_backend,
    make_polls,
    polls,
)
from tests.backends.config_memcached import memcached_server  # noqa: F401
from tests.backends.config_redis import redis_server  # noqa: F401


def answers(client, root: str, resources) -> dict[str, object]:
    """Every list and every retrieve of ``resources`` under ``root``, parsed."""
    found: dict[str, object] = {}
    for resource in resources:
        listing = client.get(f"{root}{resource}/").json()
        found[resource] = listing["results"]
        for row in listing["results"]:
            url = f"{root}{resource}/{row['id']}/"
            found[url.replace(root, "")] = client.get(url).json()
    return found


@pytest.fixture(autouse=True)
def fastpath_urls(settings) -> None:
    settings.ROOT_URLCONF = "tests.fastpath.urls"


@pytest.fixture(params=[False, True], ids=["live-list-queries", "cached-list-queries"])
def list_queries(request: pytest.FixtureRequest, settings) -> bool:
    """Run a test with the list queries asked of the database, then served from the cache."""
    settings.DRF_INSTCACHE_CACHE_LIST_QUERIES = request.param
    return request.param


class CountingBackend(LocMemBackend):
    """The locmem adapter, recording every call the core makes to it."""

    calls: list[tuple[str, int]] = []  # shared by the instances of one test

    def get_many(self, keys):
        type(self).calls.append(("get_many", len(keys)))
        return super().get_many(keys)

    def set_many(self, items, timeout=None):
        type(self).calls.append(("set_many", len(items)))
        return super().set_many(items, timeout)

    def add_many(self, items, timeout=None):
        type(self).calls.append(("add_many", len(items)))
        return super().add_many(items, timeout)

    def compare_and_set_many(self, items, timeout=None):
        type(self).calls.append(("compare_and_set_many", len(items)))
        return super().compare_and_set_many(items, timeout)


@pytest.fixture
def counting_backend(settings, cache_namespace: str) -> list[tuple[str, int]]:  # noqa: F811
    settings.DRF_INSTCACHE_BACKEND = {
        "BACKEND": f"{CountingBackend.__module__}.CountingBackend",
        "LOCATION": "fastpath-counting",
        "KEY_PREFIX": cache_namespace,
    }
    CountingBackend.calls = []
    return CountingBackend.calls
