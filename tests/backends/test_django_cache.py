"""DjangoCacheBackend behaviour beyond the conformance suite.

The conformance suite runs it over LocMemCache and Django's RedisCache. Here: the other
Django backends (database, file-based, memcached), what ``clear`` may and may not touch
in a shared alias, Django's own key prefix on top of ours, and lifetimes Django would
otherwise truncate.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from django.core.cache import caches
from django.core.cache.backends.base import CacheKeyWarning
from django.core.management import call_command

from drf_instcache.backends.django import MEMCACHED_VALUE_LIMIT, DjangoCacheBackend
from drf_instcache.exceptions import BackendUnavailable, ImproperlyConfigured, ValueTooLarge
from drf_instcache.keys import MAX_KEY_LENGTH
from drf_instcache.settings import build_backend
from drf_instcache.testing.memcached_server import MemcachedServer
from tests.backends.config_django import django_redis_cache_config
from tests.servers import require_binary

AddAlias = Callable[[dict[str, Any]], str]

LOCMEM = {
    "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
    "OPTIONS": {"MAX_ENTRIES": 100_000},
}


def locmem_alias(add_alias: AddAlias, **extra: Any) -> str:
    return add_alias({**LOCMEM, "LOCATION": f"test-{id(extra)}-{len(extra)}", **extra})


@pytest.fixture
def own_memcached_server() -> Iterator[MemcachedServer]:
    require_binary("memcached")
    with MemcachedServer(item_size="1m") as server:
        yield server


# -- configuration ---------------------------------------------------------------------
def test_unknown_alias_is_refused_naming_it():
    with pytest.raises(ImproperlyConfigured, match="no-such-alias"):
        DjangoCacheBackend("no-such-alias")


def test_unknown_option_is_refused():
    with pytest.raises(ImproperlyConfigured, match="clear_everything"):
        DjangoCacheBackend("default", options={"clear_everything": True})


def test_url_selects_the_alias_and_prefix(django_cache_alias):
    alias = locmem_alias(django_cache_alias)
    backend = build_backend(f"django://{alias}?prefix=fromurl")
    assert isinstance(backend, DjangoCacheBackend)
    backend.set_many({"k": b"v"})
    assert caches[alias].get("fromurl:k") == b"v"


# -- keys --------------------------------------------------------------------------------
def test_django_key_prefix_applies_on_top_and_keys_stay_within_limit(django_cache_alias):
    alias = locmem_alias(django_cache_alias, KEY_PREFIX="p" * 60, VERSION=7)
    backend = DjangoCacheBackend(alias, key_prefix="ours")
    items = {"short": b"1", "x" * (MAX_KEY_LENGTH - 10): b"2", "y" * 1000: b"3"}
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheKeyWarning)  # Django warns on keys over 250
        backend.set_many(items)
        assert backend.get_many(list(items)) == items
    stored = list(caches[alias]._cache)
    assert len(stored) == 3
    assert all(key.startswith("p" * 60 + ":7:ours:") for key in stored)
    assert all(len(key) <= MAX_KEY_LENGTH for key in stored)


# -- clear -------------------------------------------------------------------------------
def test_clear_keeps_the_alias_other_entries_locmem(django_cache_alias):
    alias = locmem_alias(django_cache_alias)
    caches[alias].set("session:abc", {"user": 1})
    backend = DjangoCacheBackend(alias, key_prefix="ns")
    backend.set_many({"a": b"1", "b" * 500: b"2"})
    backend.clear()
    assert backend.get_many(["a", "b" * 500]) == {}
    assert caches[alias].get("session:abc") == {"user": 1}


def test_clear_keeps_the_alias_other_entries_redis(django_cache_alias, redis_server):
    alias = django_cache_alias(django_redis_cache_config(redis_server))
    caches[alias].set("session:abc", {"user": 1})
    backend = DjangoCacheBackend(alias, key_prefix="ns")
    try:
        backend.set_many({f"k{i}": b"v" for i in range(1500)})  # more than one UNLINK batch
        backend.clear()
        assert backend.get_many([f"k{i}" for i in range(1500)]) == {}
        assert caches[alias].get("session:abc") == {"user": 1}
    finally:
        caches[alias].delete("session:abc")


def test_file_based_cache_refuses_a_partial_clear(django_cache_alias, tmp_path):
    alias = django_cache_alias(
        {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": tmp_path}
    )
    backend = DjangoCacheBackend(alias)
    backend.set_many({"k": b"v"})
    with pytest.raises(ImproperlyConfigured) as raised:
        backend.clear()
    message = str(raised.value)
    assert repr(alias) in message
    assert "FileBasedCache" in message
    assert "clear_whole_cache" in message
    assert backend.get_many(["k"]) == {"k": b"v"}


def test_clear_whole_cache_empties_the_dedicated_alias(django_cache_alias, tmp_path):
    alias = django_cache_alias(
        {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": tmp_path}
    )
    backend = DjangoCacheBackend(alias, options={"clear_whole_cache": True})
    backend.set_many({"k": b"v"})
    caches[alias].set("other", b"x")
    backend.clear()
    assert backend.get_many(["k"]) == {}
    assert caches[alias].get("other") is None


# -- database cache ----------------------------------------------------------------------
@pytest.fixture
def database_alias(django_cache_alias, db) -> str:
    alias = django_cache_alias(
        {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "instcache_test_cache_table",
            "OPTIONS": {"MAX_ENTRIES": 100_000},
        }
    )
    call_command("createcachetable", database="default", verbosity=0)
    return alias


def test_database_cache_round_trip_in_one_query(database_alias, django_assert_num_queries):
    backend = DjangoCacheBackend(database_alias, key_prefix="db")
    items = {f"k{i}": bytes([i]) * 10 for i in range(20)}
    backend.set_many(items)
    with django_assert_num_queries(1):
        assert backend.get_many([*items, "absent"]) == items
    with django_assert_num_queries(1):
        backend.delete_many(["k0", "k1"])
    assert "k0" not in backend.get_many(list(items))


def test_database_cache_clear_is_one_exact_case_sensitive_delete(
    database_alias, django_assert_num_queries
):
    # "_" and "%" are LIKE wildcards and SQLite's LIKE ignores case: none may widen the match.
    prefixes = ["a_b", "axb", "A_B", "a%b", "a_bc"]
    backends = {
        prefix: DjangoCacheBackend(database_alias, key_prefix=prefix) for prefix in prefixes
    }
    for backend in backends.values():
        backend.set_many({"k": b"v", "long" * 100: b"w"})

    with django_assert_num_queries(1):
        backends["a_b"].clear()

    assert backends["a_b"].get_many(["k", "long" * 100]) == {}
    for prefix in prefixes[1:]:
        assert backends[prefix].get_many(["k", "long" * 100]) == {"k": b"v", "long" * 100: b"w"}


def test_database_cache_missing_table_is_unavailable(django_cache_alias, db):
    alias = django_cache_alias(
        {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "no_such_table"}
    )
    backend = DjangoCacheBackend(alias)
    with pytest.raises(BackendUnavailable, match=repr(alias)):
        backend.get_many(["k"])


# -- lifetimes ---------------------------------------------------------------------------
def test_sub_second_lifetime_is_rounded_up_not_truncated(django_cache_alias, redis_server):
    # Django's RedisCache does int(timeout): 0.4 s would become 0, i.e. "delete now".
    alias = django_cache_alias(django_redis_cache_config(redis_server))
    backend = DjangoCacheBackend(alias, key_prefix="subsecond")
    backend.set_many({"k": b"v"}, timeout=0.4)
    assert backend.get_many(["k"]) == {"k": b"v"}
    raw = redis.Redis(host="127.0.0.1", port=redis_server.port)
    assert raw.ttl(caches[alias].make_key("subsecond:k")) == 1
    backend.clear()


# -- memcached through Django ------------------------------------------------------------
def memcached_alias(add_alias: AddAlias, server: MemcachedServer) -> str:
    return add_alias(
        {
            "BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
            "LOCATION": server.address,
            "OPTIONS": {"connect_timeout": 0.5, "timeout": 0.5, "retry_attempts": 1},
        }
    )


def test_memcached_alias_round_trip_and_item_limit(django_cache_alias, own_memcached_server):
    alias = memcached_alias(django_cache_alias, own_memcached_server)
    backend = DjangoCacheBackend(alias, key_prefix="mc")
    assert backend.max_value_size == MEMCACHED_VALUE_LIMIT
    long_key = "m" * 400
    backend.set_many({"k": b"\x00v", long_key: b"long"})
    assert backend.get_many(["k", long_key, "absent"]) == {"k": b"\x00v", long_key: b"long"}
    with pytest.raises(ValueTooLarge) as raised:
        backend.set_many({"huge": b"h" * (MEMCACHED_VALUE_LIMIT + 1), "fine": b"f"})
    assert raised.value.keys == ["huge"]
    assert backend.get_many(["huge", "fine"]) == {"fine": b"f"}


def test_memcached_alias_refuses_partial_clear(django_cache_alias, own_memcached_server):
    alias = memcached_alias(django_cache_alias, own_memcached_server)
    backend = DjangoCacheBackend(alias)
    with pytest.raises(ImproperlyConfigured, match="PyMemcacheCache"):
        backend.clear()


def test_memcached_alias_outage_is_unavailable(django_cache_alias, own_memcached_server):
    alias = memcached_alias(django_cache_alias, own_memcached_server)
    backend = DjangoCacheBackend(alias)
    backend.set_many({"k": b"v"})
    own_memcached_server.stop()
    with pytest.raises(BackendUnavailable):
        backend.get_many(["k"])
    with pytest.raises(BackendUnavailable):
        backend.set_many({"k": b"v"})
