"""Disk adapter: a local directory through diskcache (SQLite plus files).

Install: ``pip install 'drf-instcache[disk]'`` (diskcache 5).

Selecting it::

    DRF_INSTCACHE_BACKEND = "disk:///var/cache/myapi"
    DRF_INSTCACHE_BACKEND = "disk:///var/cache/myapi?shards=8"     # sharded for writers
    DRF_INSTCACHE_BACKEND = {
        "BACKEND": "drf_instcache.backends.disk.DiskBackend",
        "LOCATION": "/var/cache/myapi",
        "OPTIONS": {"shards": 8, "size_limit": 4 * 2**30},
        "KEY_PREFIX": "api",
        "TIMEOUT": 3600,
    }

The directory is created when missing. Every process on the machine (gunicorn
workers, Celery workers, management commands) may use the same directory at once:
SQLite's locking keeps it consistent. It is a cache for one machine: processes on
other machines do not see it.

Options (URL query parameters or ``OPTIONS``), with their defaults:

``shards`` (None: one ``diskcache.Cache``) and ``fanout`` (False)
    Spread keys over ``shards`` SQLite databases in ``000/``, ``001/``, ... so
    concurrent writers rarely wait for each other; ``fanout=true`` alone means 8 shards.
    The layout and key placement are those of ``diskcache.FanoutCache``. Every process
    using a directory must use the same setting.
``lock_timeout`` (1.0 s)
    How long a call waits for SQLite's write lock held by another process or thread
    before it raises ``BackendUnavailable`` (diskcache's ``timeout``).
``max_value_size`` (None: no limit)
    Refuse larger values with ``ValueTooLarge`` without storing them.
diskcache settings: ``size_limit`` (1 GiB, split evenly over shards),
``eviction_policy`` (``least-recently-stored``), ``cull_limit`` (10),
``disk_min_file_size`` (32 KiB: larger values go to their own file), ``statistics``
and the ``sqlite_*`` pragmas. They are stored in the database, so the last process to
open it with a different value wins.

What each call costs: ``set_many``, ``delete_many`` and the conditional writes
``add_many`` and ``compare_and_set_many`` (read, compare and write under SQLite's write
lock, so atomic across processes) are one write transaction per shard holding any of
the keys. ``get_many`` is one ``SELECT ... WHERE key IN (...)`` per
shard without taking the write lock (readers never wait for writers); with an eviction
policy that records reads (``least-recently-used``, ``least-frequently-used``) or with
``statistics`` on, it is one write transaction per shard instead.

Expiry: lifetimes keep their fractions of a second. Expired entries are skipped on read
and removed as diskcache culls on later writes. ``TIMEOUT: None`` stores without expiry;
diskcache still evicts the oldest entries when ``size_limit`` is exceeded.

Namespaces: every entry is tagged with the key prefix (with diskcache's tag index), so
:meth:`DiskBackend.clear` evicts exactly this prefix's entries and leaves other
prefixes in the same directory alone.

Limits: the fast ``get_many`` reads diskcache's table directly (schema of diskcache 5).
Values of 32 KiB and more cost a file each. Errors from SQLite (a locked or corrupt
database), from the file system (full disk, permissions) and lock timeouts raise
``BackendUnavailable``.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from diskcache import DEFAULT_SETTINGS, Cache, Timeout
from diskcache.core import EVICTION_POLICY

from drf_instcache.backends.base import BaseBackend
from drf_instcache.exceptions import ImproperlyConfigured

DEFAULT_LOCK_TIMEOUT = 1.0
OPEN_PATIENCE = 5.0
"""Seconds a first open keeps retrying while other processes hold the write lock."""
DEFAULT_FANOUT_SHARDS = 8
"""Shards when only ``fanout=true`` is given (diskcache.FanoutCache's default)."""

_OWN_OPTIONS = frozenset({"shards", "fanout", "lock_timeout"})
_DISKCACHE_SETTINGS = frozenset(DEFAULT_SETTINGS) - {"tag_index"}


class DiskBackend(BaseBackend):
    """Store instances in a local directory shared by every process on the machine."""

    scheme = "disk"
    option_names = _OWN_OPTIONS | _DISKCACHE_SETTINGS
    unavailable_errors: ClassVar[tuple[type[BaseException], ...]] = (
        Timeout,
        sqlite3.DatabaseError,  # includes OperationalError: locked, unreadable, I/O error
        OSError,
    )

    def __init__(self, location: Any = None, **kwargs: Any) -> None:
        super().__init__(location, **kwargs)
        if isinstance(location, os.PathLike):
            location = os.fspath(location)
        if not isinstance(location, str) or not location.strip():
            raise ImproperlyConfigured(
                f"DiskBackend LOCATION must be a directory path, not {location!r}"
            )
        self.directory = os.path.expanduser(location)
        options = self.options
        shards = self.number_option("shards", None, minimum=1, allow_none=True, integer=True)
        if shards is None and options.get("fanout"):
            shards = DEFAULT_FANOUT_SHARDS
        self.shards: int | None = shards
        self.lock_timeout = self.number_option("lock_timeout", DEFAULT_LOCK_TIMEOUT)
        self._settings = {k: v for k, v in options.items() if k in _DISKCACHE_SETTINGS}
        policy = self._settings.get("eviction_policy", DEFAULT_SETTINGS["eviction_policy"])
        if policy not in EVICTION_POLICY:
            raise ImproperlyConfigured(
                f"DiskBackend option 'eviction_policy' must be one of "
                f"{sorted(EVICTION_POLICY)}, not {policy!r}"
            )
        if self.shards is not None:
            size_limit = self._settings.get("size_limit", DEFAULT_SETTINGS["size_limit"])
            self._settings["size_limit"] = int(size_limit / self.shards)
        self._lock = threading.Lock()
        self._caches: tuple[Cache, ...] | None = None

    def describe(self) -> str:
        layout = f", {self.shards} shards" if self.shards is not None else ""
        return f"disk {self.directory}{layout} (prefix {self.key_prefix!r})"

    # -- the diskcache objects --------------------------------------------------------
    @property
    def caches(self) -> tuple[Cache, ...]:
        """The diskcache ``Cache`` of each shard (one without sharding), opened lazily.

        Opening creates the directory and database, so it happens on first use inside
        the error translation: a cache that cannot be opened is an unavailable cache,
        not a failed start-up.
        """
        caches = self._caches
        if caches is not None:
            return caches
        with self._lock, self.translate_errors("open"):
            if self._caches is None:
                if self.shards is None:
                    directories = [self.directory]
                else:
                    directories = [
                        os.path.join(self.directory, f"{number:03d}")
                        for number in range(self.shards)
                    ]
                self._caches = tuple(self._open(directory) for directory in directories)
            return self._caches

    def _open(self, directory: str) -> Cache:
        """Open one shard, retrying while other processes hold SQLite's write lock.

        Opening writes the schema and settings, so processes that start together (a
        pre-forked server's workers) contend for the lock; one lost race must not turn
        the first request of a worker into an outage. Retries stop after
        :data:`OPEN_PATIENCE` seconds, then the error surfaces as ``BackendUnavailable``.
        """
        deadline = time.monotonic() + max(OPEN_PATIENCE, self.lock_timeout)
        while True:
            try:
                return Cache(directory, timeout=self.lock_timeout, tag_index=True, **self._settings)
            except (Timeout, sqlite3.OperationalError):
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.02)

    def _by_shard(self, server_keys: Sequence[str]) -> dict[Cache, list[str]]:
        caches = self.caches
        if len(caches) == 1:
            return {caches[0]: list(server_keys)}
        # Disk.hash modulo the shard count is how diskcache.FanoutCache places keys.
        place = caches[0].disk.hash
        batches: dict[Cache, list[str]] = {}
        for server_key in server_keys:
            batches.setdefault(caches[place(server_key) % len(caches)], []).append(server_key)
        return batches

    # -- protocol ---------------------------------------------------------------------
    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        if not keys:
            return {}
        mapping = self.server_keys(keys)
        found: dict[str, bytes] = {}
        with self.translate_errors("get_many"):
            for cache, batch in self._by_shard(list(mapping)).items():
                for server_key, value in self._read(cache, batch).items():
                    found[mapping[server_key]] = value
        return found

    def _read(self, cache: Cache, server_keys: list[str]) -> dict[str, bytes]:
        if cache.statistics or EVICTION_POLICY[cache.eviction_policy]["get"] is not None:
            # Reads must be recorded (hit counts, access times): diskcache's own get.
            with cache.transact():
                values = {key: cache.get(key) for key in server_keys}
            return {key: value for key, value in values.items() if isinstance(value, bytes)}
        return _select_values(cache, server_keys)

    def set_many(self, items: Mapping[str, bytes], timeout: float | None = None) -> None:
        self.store(items, timeout, self._write)

    def _write(self, fitting: dict[str, bytes], lifetime: float | None) -> None:
        """diskcache's ``set`` for every item, in one write transaction per shard."""
        payload = {self.server_key(key): bytes(value) for key, value in fitting.items()}
        for cache, batch in self._by_shard(list(payload)).items():
            with cache.transact():
                for server_key in batch:
                    cache.set(server_key, payload[server_key], expire=lifetime, tag=self.key_prefix)

    def add_many(self, items: Mapping[str, bytes], timeout: float | None = None) -> list[str]:
        """diskcache's ``add`` for every item, in one write transaction per shard."""
        return self.conditional_write(
            "add_many",
            items,
            timeout,
            lambda fitting, lifetime: self._write_where(
                {key: (None, value) for key, value in fitting.items()}, lifetime
            ),
        )

    def compare_and_set_many(
        self, items: Mapping[str, tuple[bytes, bytes]], timeout: float | None = None
    ) -> list[str]:
        """Read, compare and write inside one write transaction per shard: SQLite's write
        lock keeps every other process and thread out between the read and the write."""
        return self.conditional_write(
            "compare_and_set_many", items, timeout, self._write_where, swaps=True
        )

    def _write_where(
        self,
        items: Mapping[str, tuple[bytes | None, bytes]],
        lifetime: float | None,
    ) -> list[str]:
        """Store ``new`` where the live value is ``expected`` (None: no live value)."""
        by_server_key = {self.server_key(key): key for key in items}
        stored: list[str] = []
        for cache, batch in self._by_shard(list(by_server_key)).items():
            with cache.transact():
                for server_key in batch:
                    key = by_server_key[server_key]
                    expected, new = items[key]
                    current = cache.get(server_key)
                    if current != expected:
                        continue
                    cache.set(server_key, bytes(new), expire=lifetime, tag=self.key_prefix)
                    stored.append(key)
        return stored

    def delete_many(self, keys: Sequence[str]) -> None:
        if not keys:
            return
        with self.translate_errors("delete_many"):
            for cache, batch in self._by_shard(list(self.server_keys(keys))).items():
                with cache.transact():
                    for server_key in batch:
                        cache.delete(server_key)

    def clear(self) -> None:
        """Evict every entry tagged with this prefix, in every shard."""
        with self.translate_errors("clear"):
            for cache in self.caches:
                cache.evict(self.key_prefix)

    def close(self) -> None:
        """Close this thread's SQLite connections; they reopen on the next call."""
        caches = self._caches
        if caches is not None:
            for cache in caches:
                cache.close()


def _select_values(cache: Cache, server_keys: list[str]) -> dict[str, bytes]:
    """Read many keys with one ``SELECT ... IN`` per batch, outside any transaction.

    Uses diskcache's per-thread connection (fork-aware) and its table layout: ``key``
    holds a str key as-is with ``raw = 1``, and ``Disk.fetch`` turns a row's ``mode``,
    ``filename`` and ``value`` into the stored bytes (reading the file of a large value).
    """
    connection = cache._con  # diskcache's connection for this thread and process
    per_statement = connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) - 1
    found: dict[str, bytes] = {}
    now = time.time()
    for start in range(0, len(server_keys), per_statement):
        batch = server_keys[start : start + per_statement]
        placeholders = ",".join("?" * len(batch))
        rows = connection.execute(
            "SELECT key, mode, filename, value FROM Cache"
            f" WHERE key IN ({placeholders}) AND raw = 1"
            " AND (expire_time IS NULL OR expire_time > ?)",
            (*batch, now),
        ).fetchall()
        for key, mode, filename, value in rows:
            try:
                data = cache.disk.fetch(mode, filename, value, False)
            except OSError:
                continue  # replaced by another process after we read its row: a miss
            if isinstance(data, bytes):
                found[key] = data
    return found
