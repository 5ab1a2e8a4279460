"""Django-cache adapter: store instances in any ``CACHES`` alias.

Nothing extra to install: it uses whatever cache backend the alias configures (Django's
Memcached, Redis, database, file-based or local-memory caches, or a third-party one).
It is the default backend, so a project that already has a cache works unchanged.

Selecting it::

    DRF_INSTCACHE_BACKEND = "django://default"      # the default when the setting is unset
    DRF_INSTCACHE_BACKEND = "django://instances"    # a dedicated alias (recommended)
    DRF_INSTCACHE_BACKEND = {
        "BACKEND": "drf_instcache.backends.django.DjangoCacheBackend",
        "LOCATION": "instances",
        "OPTIONS": {"clear_whole_cache": True},
        "KEY_PREFIX": "api",
        "TIMEOUT": 3600,
    }

Semantics: ``get_many``/``set_many``/``delete_many`` are the alias's own bulk methods,
so the cost of a call is whatever that Django backend makes of it (one MGET, one
memcached multi-get, one SQL query, one pickle per key in local memory...). Our
``TIMEOUT``/``timeout`` decides lifetimes, not the alias's ``TIMEOUT``: ``None`` is passed
as Django's ``None`` (never expire), a positive lifetime is rounded up to whole seconds
(several Django backends truncate it, which would turn 0.5 s into "expired"), and ``0`` or
less deletes the keys. Django's own ``KEY_PREFIX``, ``VERSION`` and ``KEY_FUNCTION`` still
apply on top of our prefix; a key that would grow past 250 characters with them is
replaced by a stable hash, so memcached-based aliases never refuse it.

Options:

``clear_whole_cache`` (False)
    Let :meth:`DjangoCacheBackend.clear` call the alias's ``clear()``, emptying the
    whole alias. Only for an alias used by nothing else.
``max_value_size`` (None; 1 MiB minus 1 KiB on Django's memcached backends)
    Refuse larger values with ``ValueTooLarge`` without sending them.

Limits:

* The conditional writes behind the core's leases: ``add_many`` is the alias's ``add``,
  one call per key; ``compare_and_set_many`` is atomic on ``LocMemCache`` and
  ``RedisCache`` and best effort elsewhere (read, compare, then write), so on other
  Django backends a write can still, rarely, be overwritten by an older fill.
* ``clear()`` removes only our prefix on aliases whose keys can be listed:
  ``LocMemCache``, Django's ``RedisCache`` (SCAN + UNLINK) and ``DatabaseCache`` (one
  ``DELETE ... LIKE``); it is a no-op on ``DummyCache``. Other backends (file-based,
  memcached, third-party) cannot map stored names back to keys, so ``clear()`` raises
  ``ImproperlyConfigured`` unless ``clear_whole_cache`` is set.
* Django's local-memory, database and file caches evict entries beyond their
  ``OPTIONS["MAX_ENTRIES"]`` (300 by default): raise it to hold the working set.
* Local memory is per process; use a shared server when several processes serve the API.
* Values are pickled by most Django backends (bytes round-trip exactly).
* Give Django's ``RedisCache`` short ``socket_timeout``/``socket_connect_timeout``
  ``OPTIONS``: redis-py otherwise waits up to 5 s per operation before the core can fall
  back to the database.
* With ``DatabaseCache`` inside a transaction (``ATOMIC_REQUESTS``), a failing cache query
  (a missing table: run ``createcachetable``) aborts that transaction on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from django.conf import settings as django_settings
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache as DjangoBaseCache
from django.core.cache.backends.db import BaseDatabaseCache
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.memcached import BaseMemcachedCache
from django.core.cache.backends.redis import RedisCache
from django.db import Error as DatabaseError
from django.db import connections, router

from drf_instcache.backends.base import BaseBackend
from drf_instcache.backends.keys import MAX_KEY_LENGTH
from drf_instcache.exceptions import ImproperlyConfigured, ValueTooLarge

MEMCACHED_VALUE_LIMIT = 1024 * 1024 - 1024
"""Largest value sent to a Django memcached alias: memcached's 1 MiB item size, less
room for the key, the pickle header and memcached's own item header."""

CLEAR_BATCH_SIZE = 1000
"""Keys per SCAN step and per UNLINK when clearing a Django RedisCache alias."""

_OPTION_NAMES = frozenset({"clear_whole_cache", "max_value_size"})
_LIKE_ESCAPE = "!"


def _client_errors() -> tuple[type[BaseException], ...]:
    """The exceptions Django's cache backends let through when their server fails.

    Django does not wrap client errors, so each client library's base error is listed
    here when that library is installed.
    """
    errors: list[type[BaseException]] = [OSError, DatabaseError]
    try:
        from redis.exceptions import RedisError
    except ImportError:
        pass
    else:
        errors.append(RedisError)
    try:
        from pymemcache.exceptions import MemcacheError
    except ImportError:
        pass
    else:
        errors.append(MemcacheError)
    try:
        from pylibmc import Error as PylibmcError  # type: ignore[import-not-found]
    except ImportError:
        pass
    else:
        errors.append(PylibmcError)
    return tuple(errors)


def _shortened(key: str) -> str:
    """A stable replacement for a key that Django's own prefix would push past 250."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=20).hexdigest()
    return f"{key[:80]}#{digest}"


def _like_escape(text: str) -> str:
    """Escape ``text`` for SQL ``LIKE ... ESCAPE '!'``."""
    for char in (_LIKE_ESCAPE, "%", "_"):
        text = text.replace(char, _LIKE_ESCAPE + char)
    return text


def _glob_escape(text: str) -> str:
    """Escape ``text`` for a Redis MATCH pattern."""
    return "".join(f"\\{char}" if char in "\\*?[]" else char for char in text)


class DjangoCacheBackend(BaseBackend):
    """Store instances in a Django ``CACHES`` alias (location = the alias name)."""

    scheme = "django"
    option_names = _OPTION_NAMES
    unavailable_errors: ClassVar[tuple[type[BaseException], ...]] = _client_errors()

    def __init__(self, location: Any = None, **kwargs: Any) -> None:
        super().__init__(location or "default", **kwargs)
        if not isinstance(self.location, str):
            raise ImproperlyConfigured(
                f"DjangoCacheBackend LOCATION must be a CACHES alias name, not {self.location!r}"
            )
        configured = getattr(django_settings, "CACHES", {})
        if self.location not in configured:
            raise ImproperlyConfigured(
                f"DjangoCacheBackend: no cache alias {self.location!r} in settings.CACHES "
                f"(defined: {sorted(configured)})"
            )
        self.clear_whole_cache = bool(self.options.get("clear_whole_cache", False))

    @property
    def cache(self) -> DjangoBaseCache:
        """The alias's cache object; looked up per call since Django keeps one per thread."""
        return caches[self.location]

    @property
    def max_value_size(self) -> int | None:
        if self._max_value_size is None and isinstance(self.cache, BaseMemcachedCache):
            return MEMCACHED_VALUE_LIMIT
        return self._max_value_size

    def describe(self) -> str:
        return f"cache alias {self.location!r} (prefix {self.key_prefix!r})"

    def server_key(self, key: str) -> str:
        """Our prefixed safe key, hashed shorter if Django's made key would exceed 250."""
        ours = super().server_key(key)
        if len(self.cache.make_key(ours)) > MAX_KEY_LENGTH:
            return _shortened(ours)
        return ours

    # -- protocol ---------------------------------------------------------------------
    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        if not keys:
            return {}
        mapping = self.server_keys(keys)
        with self.translate_errors("get_many"):
            found = self.cache.get_many(list(mapping))
        return {
            mapping[server_key]: value
            for server_key, value in found.items()
            if isinstance(value, bytes)  # anything else was not written by us
        }

    def set_many(self, items: Mapping[str, bytes], timeout: float | None = None) -> None:
        self.store(items, timeout, self._write)

    def _write(self, fitting: dict[str, bytes], lifetime: float | None) -> ValueTooLarge | None:
        """The cache's ``set_many``; the values it reports it did not store."""
        django_timeout = None if lifetime is None else self.whole_seconds(lifetime)
        by_server_key = {self.server_key(key): key for key in fitting}
        data = {server_key: bytes(fitting[key]) for server_key, key in by_server_key.items()}
        failed = self.cache.set_many(data, timeout=django_timeout)
        refused = [by_server_key[server_key] for server_key in failed or ()]
        if not refused:
            return None
        # Django's memcached backends report the keys the server did not store;
        # the usual reason is an item over the server's size limit.
        sizes = [len(fitting[key]) for key in refused]
        return ValueTooLarge(refused, self.max_value_size or min(sizes), sizes)

    def add_many(self, items: Mapping[str, bytes], timeout: float | None = None) -> list[str]:
        """The alias's ``add`` for each item (Django has no bulk add): one call per key."""

        def add(fitting: dict[str, bytes], lifetime: float | None) -> list[str]:
            django_timeout = None if lifetime is None else self.whole_seconds(lifetime)
            cache = self.cache
            return [
                key
                for key, value in fitting.items()
                if cache.add(self.server_key(key), bytes(value), timeout=django_timeout)
            ]

        return self.conditional_write("add_many", items, timeout, add)

    def compare_and_set_many(
        self, items: Mapping[str, tuple[bytes, bytes]], timeout: float | None = None
    ) -> list[str]:
        """Atomic on ``LocMemCache`` (its lock) and ``RedisCache`` (a Lua script).

        Other Django backends have no compare-and-set: the values are read with
        ``get_many`` and the matching ones written with ``set``, so a write landing
        between the two can be overwritten (a narrower window than no check at all).
        """

        def swap(fitting: dict[str, tuple[bytes, bytes]], lifetime: float | None) -> list[str]:
            django_timeout = None if lifetime is None else self.whole_seconds(lifetime)
            swaps = {self.server_key(key): (key, pair) for key, pair in fitting.items()}
            cache = self.cache
            if isinstance(cache, LocMemCache):
                return _swap_locmem(cache, swaps, django_timeout)
            if isinstance(cache, RedisCache):
                return _swap_redis(cache, swaps, django_timeout)
            return _swap_best_effort(cache, swaps, django_timeout)

        return self.conditional_write("compare_and_set_many", items, timeout, swap, swaps=True)

    def delete_many(self, keys: Sequence[str]) -> None:
        if not keys:
            return
        server_keys = list(self.server_keys(keys))
        with self.translate_errors("delete_many"):
            self.cache.delete_many(server_keys)

    def clear(self) -> None:
        """Delete our prefix's keys, on the Django backends that can list their keys."""
        cache = self.cache
        with self.translate_errors("clear"):
            if self.clear_whole_cache:
                cache.clear()
            elif isinstance(cache, DummyCache):
                return
            elif isinstance(cache, LocMemCache):
                self._clear_locmem(cache, self._made_head(cache))
            elif isinstance(cache, RedisCache):
                self._clear_redis(cache, self._made_head(cache))
            elif isinstance(cache, BaseDatabaseCache):
                self._clear_database(cache, self._made_head(cache))
            else:
                raise self._cannot_clear(cache, "cannot list its keys")

    def close(self) -> None:
        """Let the alias release its connections (Django also does so after each request)."""
        with self.translate_errors("close"):
            self.cache.close()

    # -- clear() per Django backend ---------------------------------------------------
    def _made_head(self, cache: DjangoBaseCache) -> str:
        """The start shared by every key Django stores for our namespace."""
        head = cache.make_key("")
        if cache.make_key("probe") != head + "probe":
            raise self._cannot_clear(cache, "has a KEY_FUNCTION that does not end with the key")
        return head + f"{self.key_prefix}:"

    def _cannot_clear(self, cache: DjangoBaseCache, reason: str) -> ImproperlyConfigured:
        return ImproperlyConfigured(
            f"DjangoCacheBackend cannot clear only prefix {self.key_prefix!r} from cache "
            f"alias {self.location!r}: {type(cache).__name__} {reason}. Give drf-instcache "
            f"a dedicated CACHES alias and call caches[{self.location!r}].clear(), or set "
            "OPTIONS {'clear_whole_cache': True} so clear() empties that whole alias."
        )

    @staticmethod
    def _clear_locmem(cache: Any, head: str) -> None:
        # A LocMemCache, used through private attributes django-stubs does not declare.
        with cache._lock:
            for made_key in [key for key in cache._cache if key.startswith(head)]:
                del cache._cache[made_key]
                cache._expire_info.pop(made_key, None)

    @staticmethod
    def _clear_redis(cache: RedisCache, head: str) -> None:
        client = cache._cache.get_client(write=True)
        batch: list[bytes] = []
        for made_key in client.scan_iter(match=_glob_escape(head) + "*", count=CLEAR_BATCH_SIZE):
            batch.append(made_key)
            if len(batch) >= CLEAR_BATCH_SIZE:
                client.unlink(*batch)
                batch = []
        if batch:
            client.unlink(*batch)

    @staticmethod
    def _clear_database(cache: Any, head: str) -> None:
        # A BaseDatabaseCache; its table name is private (undeclared in django-stubs).
        database = router.db_for_write(cache.cache_model_class)
        connection = connections[database]
        quote = connection.ops.quote_name
        # LIKE uses the index; the SUBSTR comparison keeps the match case-sensitive on
        # databases (SQLite) whose LIKE ignores case.
        sql = (
            f"DELETE FROM {quote(cache._table)} WHERE {quote('cache_key')} "
            f"LIKE %s ESCAPE '{_LIKE_ESCAPE}' AND SUBSTR({quote('cache_key')}, 1, %s) = %s"
        )
        with connection.cursor() as cursor:  # one statement: atomic on its own
            cursor.execute(sql, [_like_escape(head) + "%", len(head), head])


# -- compare_and_set_many per Django backend ------------------------------------------
Swaps = Mapping[str, tuple[str, tuple[bytes, bytes]]]
"""Our server key -> (caller's key, (expected, new))."""


def _swap_locmem(cache: Any, swaps: Swaps, timeout: int | None) -> list[str]:
    """Compare and set under LocMemCache's own lock (values are pickled there).

    ``cache`` is a LocMemCache, used through private attributes django-stubs does not declare.
    """
    stored = []
    with cache._lock:
        for server_key, (key, (expected, new)) in swaps.items():
            made_key = cache.make_and_validate_key(server_key)
            if cache._has_expired(made_key):
                continue
            if pickle.loads(cache._cache[made_key]) == expected:
                cache._set(made_key, pickle.dumps(new, cache.pickle_protocol), timeout)
                stored.append(key)
    return stored


def _swap_redis(cache: Any, swaps: Swaps, timeout: int | None) -> list[str]:
    """Compare and set on the server, with the script of the Redis adapter, pipelined.

    ``cache`` is a RedisCache; its client's serializer is private (undeclared in django-stubs).
    """
    from drf_instcache.backends.redis import COMPARE_AND_SET_SCRIPT

    serializer = cache._cache._serializer
    expiry = b"" if timeout is None else str(timeout * 1000).encode("ascii")
    client = cache._cache.get_client(write=True)
    pipeline = client.pipeline(transaction=False)
    keys = []
    for server_key, (key, (expected, new)) in swaps.items():
        made_key = cache.make_and_validate_key(server_key)
        pipeline.eval(
            COMPARE_AND_SET_SCRIPT,
            1,
            made_key,
            serializer.dumps(expected),
            serializer.dumps(new),
            expiry,
        )
        keys.append(key)
    return [key for key, reply in zip(keys, pipeline.execute(), strict=True) if reply == 1]


def _swap_best_effort(cache: DjangoBaseCache, swaps: Swaps, timeout: int | None) -> list[str]:
    """Read, compare, then write the matches: not atomic (no such primitive in Django)."""
    current = cache.get_many(list(swaps))
    stored = []
    for server_key, (key, (expected, new)) in swaps.items():
        if current.get(server_key) == expected:
            cache.set(server_key, new, timeout=timeout)
            stored.append(key)
    return stored
