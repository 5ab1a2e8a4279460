"""A bounded in-process near cache in front of Redis, invalidated by the server.

Every value read through :class:`NearCacheBackend` (rendered entries, instance entries,
list-query results, generation tokens: whatever the core stores) is kept in this
process's memory, in an LRU bounded by bytes, so a warm read costs a dictionary lookup
instead of a round trip. Freshness comes from Redis *client-side caching* (``CLIENT
TRACKING``), in broadcasting mode:

* one dedicated connection per process runs ``CLIENT TRACKING on REDIRECT <its own id>
  BCAST PREFIX <namespace>:`` and then ``SUBSCRIBE __redis__:invalidate`` (RESP2, so it
  works with any redis-py and server 6+). In BCAST mode the server tells it about
  *every* key of the namespace written, deleted or expired by anyone, whatever this
  process read, so the data connections of the pool need no tracking at all, and
  tracking and delivery share one connection: they are lost together, never one
  without the other;
* a daemon thread reads the messages and evicts the keys they name; an empty
  (``null``) message, sent on ``FLUSHDB``/``FLUSHALL``, empties the near cache;
* when that connection is lost (server restart, ``CLIENT KILL``, network error, no
  answer to a ``PING`` within ``HEALTH_CHECK_INTERVAL``), the near cache is emptied and
  bypassed (every read goes to Redis, nothing is kept) until the thread has
  reconnected and subscribed again; it empties it once more then, since writes made
  meanwhile were never announced.

The read/invalidate race: a reply can leave the server before a write and reach this
process after that write's invalidation was handled (the two travel on different
connections). Each invalidated key therefore takes a sequence number; a read notes the
current number before it asks Redis, and a value is kept only if no invalidation of its
key (and no flush) was handled since. The last :data:`RACE_LOG_SIZE` invalidated keys
are remembered for that check; a read that is further behind keeps nothing.

The writing process is fresh at once: ``set_many``, ``delete_many``, ``add_many``,
``compare_and_set_many`` and ``clear`` evict the keys locally (and note them as
invalidated, so a concurrent read in this process cannot put an older value back)
before they return. Written values are not inserted: the next read fetches them.
Markers (leases, :data:`~drf_instcache.leases.UNCACHEABLE`) and any value led by the
reserved NUL byte are never kept.

Selected with ``DRF_INSTCACHE_BACKEND = {"BACKEND": "redis://...", "OPTIONS":
{"NEAR_CACHE": {"MAX_BYTES": 64 * 2**20}}}``; off by default. Redis only (single
node): Cluster and Sentinel are refused with :class:`ImproperlyConfigured`.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from drf_instcache.backends import reporting
from drf_instcache.backends.base import (
    Backend,
    LeasingBackend,
    fill_many,
    fill_many_quietly,
    get_many_claiming,
    supports_leases,
)
from drf_instcache.backends.markers import MARKER_HEAD
from drf_instcache.backends.near_store import (
    OPTION,
    NearCacheConfig,
    NearStore,
    entry_size,
    parse_config,
    split_setting,
)
from drf_instcache.backends.near_tracking import RedisTracking, TrackingLost
from drf_instcache.backends.reporting import Count
from drf_instcache.exceptions import ImproperlyConfigured

__all__ = [
    "OPTION",
    "LeasingNearCacheBackend",
    "NearCacheBackend",
    "NearCacheConfig",
    "NearReads",
    "NearStore",
    "RedisTracking",
    "TrackingLost",
    "entry_size",
    "find_redis_adapter",
    "near_layer",
    "parse_config",
    "recording_reads",
    "split_setting",
]


# -- what a computation read ----------------------------------------------------------
@dataclass
class NearReads:
    """The keys a computation read through a near cache, and whether all were there.

    ``complete`` stays True only while every key read was found holding a value (in
    memory or on the server) and no read failed: an answer computed from such reads is
    announced stale by the invalidation of any of them, since Redis announces a write
    or deletion only of a key that exists.
    """

    keys: list[str] = field(default_factory=list)
    complete: bool = True


_reads: ContextVar[NearReads | None] = ContextVar("drf_instcache_near_reads", default=None)


@contextlib.contextmanager
def recording_reads() -> Iterator[NearReads]:
    """Note every key read through a near cache in this context (thread, task)."""
    reads = NearReads()
    token = _reads.set(reads)
    try:
        yield reads
    finally:
        _reads.reset(token)


def near_layer(backend: Any) -> NearCacheBackend | None:
    """The near cache in a chain of wrappers (``.backend``), or None."""
    layer = backend
    for _ in range(16):
        if isinstance(layer, NearCacheBackend):
            return layer
        layer = getattr(layer, "backend", None)
        if layer is None:
            return None
    return None


# -- the backend wrapper ---------------------------------------------------------------
def find_redis_adapter(backend: Any) -> Any:
    """The Redis adapter under a chain of wrappers (``.backend``), or refuse the chain."""
    from drf_instcache.backends.redis import RedisBackend
    from drf_instcache.backends.sentinel import RedisSentinelBackend

    adapter = backend
    while not isinstance(adapter, RedisBackend) and hasattr(adapter, "backend"):
        adapter = adapter.backend
    if not isinstance(adapter, RedisBackend):
        raise ImproperlyConfigured(
            f"OPTIONS[{OPTION!r}] needs the Redis backend (redis://, rediss:// or unix://): "
            f"the near cache is invalidated by Redis client-side caching, which "
            f"{type(adapter).__name__} does not offer. Remove NEAR_CACHE or use Redis."
        )
    if adapter.cluster:
        raise ImproperlyConfigured(
            f"OPTIONS[{OPTION!r}] is not supported on Redis Cluster yet (each master would "
            "need its own invalidation connection, and slot migrations their own flush). "
            "Remove NEAR_CACHE, or use a single Redis node."
        )
    if isinstance(adapter, RedisSentinelBackend):
        raise ImproperlyConfigured(
            f"OPTIONS[{OPTION!r}] is not supported with Redis Sentinel yet (after a failover "
            "the invalidation connection must follow the new master). Remove NEAR_CACHE, "
            "or use a single Redis node."
        )
    return adapter


class NearCacheBackend:
    """Wrap a Redis-backed :class:`Backend` with a per-process near cache.

    Same protocol; wrapping a backend with conditional writes gives a
    :class:`LeasingNearCacheBackend` (the wrapper neither hides nor adds a capability).
    The tracking thread starts at first read (and again in a forked child, or after
    :meth:`close`); until it has subscribed, reads go to Redis.
    """

    after_read: Callable[[Sequence[str]], object] | None = None
    """Test hook: called with the keys fetched, between Redis's reply and the fill."""

    def __new__(
        cls, backend: Backend, config: NearCacheConfig, count: Count = reporting.count
    ) -> Any:
        if cls is NearCacheBackend and supports_leases(backend):
            cls = LeasingNearCacheBackend
        return super().__new__(cls)

    def __init__(
        self, backend: Backend, config: NearCacheConfig, count: Count = reporting.count
    ) -> None:
        self.backend = backend
        self.config = config
        self.adapter = find_redis_adapter(backend)
        self.store = NearStore(
            config.max_bytes, config.max_item_bytes, self.adapter.server_keys, count
        )
        self._lock = threading.Lock()
        self._tracking: RedisTracking | None = None
        self._tracking_pid: int | None = None

    # -- tracking ------------------------------------------------------------------
    @property
    def tracking(self) -> RedisTracking | None:
        """The tracking thread of this process (None before the first read)."""
        return self._tracking if self._tracking_pid == os.getpid() else None

    def _make_connection(self) -> Any:
        """A connection like the pool's, but RESP2, unpooled, with no retries or checks."""
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        pool = self.adapter.client.connection_pool
        kwargs = {
            **pool.connection_kwargs,
            "protocol": 2,
            "socket_timeout": max(self.config.health_check_interval, self.adapter.socket_timeout),
            "health_check_interval": 0,
            "retry": Retry(NoBackoff(), 0),
        }
        connection = pool.connection_class(**kwargs)
        connection.instcache_tracking = True  # not a data connection (tests count those)
        return connection

    def start_tracking(self) -> RedisTracking:
        """Start this process's tracking thread if it is not running."""
        with self._lock:
            tracking = self.tracking
            if tracking is None or not tracking.alive:
                self.store.set_live(False)
                tracking = RedisTracking(
                    self.store,
                    self._make_connection,
                    self.adapter.key_prefix,
                    self.config,
                    self.adapter.unavailable_errors,
                )
                tracking.start()
                self._tracking, self._tracking_pid = tracking, os.getpid()
            return tracking

    def _stop_tracking(self) -> None:
        with self._lock:
            tracking, self._tracking, self._tracking_pid = self._tracking, None, None
        if tracking is not None:
            tracking.stop()
        self.store.set_live(False)

    # -- protocol ------------------------------------------------------------------
    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        found, _won = self._read(keys, lambda missing: (self.backend.get_many(missing), []))
        return found

    def _read(
        self,
        keys: Sequence[str],
        fetch: Callable[[list[str]], tuple[dict[str, bytes], list[str]]],
    ) -> tuple[dict[str, bytes], list[str]]:
        """Serve what memory holds, ``fetch`` the rest, keep what may be kept."""
        if not keys:
            return {}, []
        if self._tracking_pid != os.getpid():
            self.start_tracking()
        reads = _reads.get()
        if reads is not None:
            reads.keys.extend(keys)
        found, missing, ticket = self.store.lookup(keys)
        if not missing:
            return found, []
        try:
            fetched, won = fetch(missing)
        except BaseException:
            if reads is not None:
                reads.complete = False
            raise
        if reads is not None and (
            len(fetched) < len(missing)
            or any(value[:1] == MARKER_HEAD for value in fetched.values())
        ):
            reads.complete = False
        if fetched:
            hook = self.after_read
            if hook is not None:
                hook(list(fetched))
            self.store.fill(fetched, ticket)
            found.update(fetched)
        return found, won

    # -- kept answers (see NearStore.keep_answer) -----------------------------------
    def mark(self) -> Any:
        """The ticket to compute an answer under (None while bypassed)."""
        if self._tracking_pid != os.getpid():
            self.start_tracking()
        return self.store.mark()

    def keep_answer(self, key: Any, value: Any, nbytes: int, reads: NearReads, ticket: Any) -> bool:
        """Keep an answer computed from complete ``reads`` since ``ticket``."""
        if not reads.complete or not reads.keys:
            return False
        return self.store.keep_answer(key, value, nbytes, reads.keys, ticket)

    def answer(self, key: Any) -> Any:
        """A kept answer that is still valid, or None."""
        if self._tracking_pid != os.getpid():
            return None
        return self.store.answer(key)

    def set_many(self, items: Mapping[str, bytes], timeout: float | None = None) -> None:
        if not items:
            return
        try:
            self.backend.set_many(items, timeout)
        finally:
            self.store.forget(list(items))

    def delete_many(self, keys: Sequence[str]) -> None:
        if not keys:
            return
        try:
            self.backend.delete_many(keys)
        finally:
            self.store.forget(keys)

    def clear(self) -> None:
        try:
            self.backend.clear()
        finally:
            self.store.flush()

    def close(self) -> None:
        """Stop the tracking thread and empty the near cache; the next read restarts it."""
        try:
            self._stop_tracking()
        finally:
            self.backend.close()

    def near_stats(self) -> dict[str, Any]:
        """This near cache's counts and size, and its tracking connection's id."""
        tracking = self.tracking
        return {
            **self.store.stats(),
            "client_id": tracking.client_id if tracking is not None else None,
        }

    def __getattr__(self, name: str) -> Any:
        # Optional capabilities of the wrapped adapter (server_key, stats...) stay reachable.
        return getattr(self.backend, name)

    def __repr__(self) -> str:
        return f"<NearCacheBackend {self.config.max_bytes}B {self.backend!r}>"


class LeasingNearCacheBackend(NearCacheBackend):
    """The near cache over a backend with conditional writes: they always go to Redis."""

    backend: LeasingBackend

    def get_many_claiming(
        self, keys: Sequence[str], lease: bytes, timeout: float | None
    ) -> tuple[dict[str, bytes], list[str]]:
        """A read that leases the empty keys: memory first, the rest in one call below."""

        def claim(missing: list[str]) -> tuple[dict[str, bytes], list[str]]:
            found, won = get_many_claiming(self.backend, missing, lease, timeout)
            self.store.forget(won)  # written (leased): as after add_many
            return found, won

        return self._read(keys, claim)

    def fill_many(
        self, lease: bytes, items: Mapping[str, bytes], timeout: float | None = None
    ) -> list[str]:
        if not items:
            return []
        try:
            return fill_many(self.backend, lease, items, timeout)
        finally:
            self.store.forget(list(items))

    def fill_many_quietly(
        self, lease: bytes, items: Mapping[str, bytes], timeout: float | None = None
    ) -> None:
        if not items:
            return
        try:
            fill_many_quietly(self.backend, lease, items, timeout)
        finally:
            self.store.forget(list(items))

    def add_many(self, items: Mapping[str, bytes], timeout: float | None = None) -> list[str]:
        if not items:
            return []
        try:
            return self.backend.add_many(items, timeout)
        finally:
            self.store.forget(list(items))

    def compare_and_set_many(
        self, items: Mapping[str, tuple[bytes, bytes]], timeout: float | None = None
    ) -> list[str]:
        if not items:
            return []
        try:
            return self.backend.compare_and_set_many(items, timeout)
        finally:
            self.store.forget(list(items))
