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
import logging
import os
import sys
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

from drf_instcache.backends.base import Backend, LeasingBackend, supports_leases
from drf_instcache.backends.markers import MARKER_HEAD
from drf_instcache.core import counters
from drf_instcache.exceptions import ImproperlyConfigured

logger = logging.getLogger("drf_instcache.near")

OPTION = "NEAR_CACHE"
"""The key of ``DRF_INSTCACHE_BACKEND["OPTIONS"]`` that turns the near cache on."""

DEFAULT_HEALTH_CHECK_INTERVAL = 1.0
DEFAULT_MAX_RECONNECT_DELAY = 1.0
FIRST_RECONNECT_DELAY = 0.05
RACE_LOG_SIZE = 65_536
"""Invalidated keys remembered for the read/invalidate race check."""
ENTRY_OVERHEAD = 240
"""Bytes accounted per entry besides the value, key and server key objects: the LRU's
slot and link, the reverse map's slot, the entry tuple and its size (measured with
tracemalloc on CPython 3.11-3.13 at about 200; rounded up)."""
INVALIDATION_CHANNEL = "__redis__:invalidate"

_KEYS = {"MAX_BYTES", "MAX_ITEM_BYTES", "HEALTH_CHECK_INTERVAL", "MAX_RECONNECT_DELAY"}


@dataclass(frozen=True)
class NearCacheConfig:
    """How much the near cache holds and how it watches its invalidation connection."""

    max_bytes: int
    """Upper bound of the accounted size of every entry (values, keys, overhead)."""
    max_item_bytes: int
    """Largest accounted entry kept (default: an eighth of ``max_bytes``)."""
    health_check_interval: float = DEFAULT_HEALTH_CHECK_INTERVAL
    """Seconds of silence on the invalidation connection before a PING; a PING not
    answered within as long again counts as a lost connection."""
    max_reconnect_delay: float = DEFAULT_MAX_RECONNECT_DELAY
    """Longest wait between two reconnection attempts (the delay doubles from 50 ms)."""


def _number(value: Any, minimum: float, integer: bool) -> bool:
    kinds = int if integer else int | float
    return isinstance(value, kinds) and not isinstance(value, bool) and value >= minimum


def parse_config(value: Any) -> NearCacheConfig | None:
    """Turn an ``OPTIONS["NEAR_CACHE"]`` value into a config (None/False: off)."""
    if value is None or value is False:
        return None
    if not isinstance(value, Mapping) or set(value) - _KEYS or "MAX_BYTES" not in value:
        raise ImproperlyConfigured(
            f"OPTIONS[{OPTION!r}] must be None or a dict with MAX_BYTES and optionally "
            f"{', '.join(sorted(_KEYS - {'MAX_BYTES'}))}, e.g. "
            f"{{'MAX_BYTES': 64 * 2**20}}; got {value!r}"
        )
    max_bytes = value["MAX_BYTES"]
    max_item = value.get("MAX_ITEM_BYTES", max_bytes // 8 if _number(max_bytes, 1, True) else 0)
    interval = value.get("HEALTH_CHECK_INTERVAL", DEFAULT_HEALTH_CHECK_INTERVAL)
    delay = value.get("MAX_RECONNECT_DELAY", DEFAULT_MAX_RECONNECT_DELAY)
    if not (
        _number(max_bytes, 1, True)
        and _number(max_item, 1, True)
        and max_item <= max_bytes
        and _number(interval, 0.01, False)
        and _number(delay, 0.01, False)
    ):
        raise ImproperlyConfigured(
            f"OPTIONS[{OPTION!r}]: MAX_BYTES must be an integer >= 1, MAX_ITEM_BYTES an "
            "integer from 1 to MAX_BYTES, HEALTH_CHECK_INTERVAL and MAX_RECONNECT_DELAY "
            f"numbers of seconds >= 0.01; got {value!r}"
        )
    return NearCacheConfig(int(max_bytes), int(max_item), float(interval), float(delay))


def split_setting(value: Any) -> tuple[Any, NearCacheConfig | None]:
    """``DRF_INSTCACHE_BACKEND`` without its near-cache option, and that option parsed."""
    if not isinstance(value, Mapping):
        return value, None
    options = value.get("OPTIONS")
    if not isinstance(options, Mapping) or OPTION not in options:
        return value, None
    rest = {**value, "OPTIONS": {k: v for k, v in options.items() if k != OPTION}}
    return rest, parse_config(options[OPTION])


def entry_size(key: str, server_key: str, value: bytes) -> int:
    """The bytes one entry is accounted for."""
    return sys.getsizeof(value) + sys.getsizeof(key) + sys.getsizeof(server_key) + ENTRY_OVERHEAD


# -- the store -------------------------------------------------------------------------
Ticket = tuple[int, int]
"""``(epoch, sequence)`` noted before a read: what :meth:`NearStore.fill` checks."""


class NearStore:
    """The in-memory part: an LRU bounded by bytes, its reverse map and the race log.

    Thread-safe (one lock). Knows nothing of Redis: the tracking thread calls
    :meth:`set_live` and :meth:`invalidate`, the backend wrapper the rest.
    """

    def __init__(
        self, max_bytes: int, max_item_bytes: int, server_keys: Callable[[Sequence[str]], dict]
    ) -> None:
        self.max_bytes = max_bytes
        self.max_item_bytes = max_item_bytes
        self._server_keys = server_keys
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[bytes, str, int]] = OrderedDict()
        self._by_server_key: dict[str, str] = {}
        self._size = 0
        self._live = False
        self._epoch = 0
        self._sequence = 0
        self._log: deque[str] = deque(maxlen=RACE_LOG_SIZE)
        self.hits = self.misses = self.evictions = self.invalidations = self.flushes = 0

    # -- reads ---------------------------------------------------------------------
    @property
    def live(self) -> bool:
        return self._live

    def lookup(self, keys: Sequence[str]) -> tuple[dict[str, bytes], list[str], Ticket | None]:
        """Hits, the keys to ask the server for, and the ticket to fill them with.

        The ticket is None while the near cache is bypassed (nothing may be kept).
        """
        found: dict[str, bytes] = {}
        with self._lock:
            if not self._live:
                return found, list(keys), None
            missing: list[str] = []
            get = self._entries.get
            touch = self._entries.move_to_end
            for key in keys:
                entry = get(key)
                if entry is None:
                    missing.append(key)
                else:
                    touch(key)
                    found[key] = entry[0]
            ticket = (self._epoch, self._sequence)
            self.hits += len(found)
            self.misses += len(missing)
        if found:
            counters.incr("near_hits", len(found))
        if missing:
            counters.incr("near_misses", len(missing))
        return found, missing, ticket

    def fill(self, items: Mapping[str, bytes], ticket: Ticket | None) -> None:
        """Keep what a read fetched, unless its key was invalidated since ``ticket``."""
        if ticket is None or not items:
            return
        mapping = self._server_keys(list(items))
        evicted = 0
        with self._lock:
            epoch, sequence = ticket
            if not self._live or epoch != self._epoch:
                return
            skipped: set[str] = set()
            behind = self._sequence - sequence
            if behind:
                if behind > len(self._log):
                    return  # too far behind to tell which keys changed: keep none
                skipped = set(islice(reversed(self._log), behind))
            entries = self._entries
            for server_key, key in mapping.items():
                value = items[key]
                if server_key in skipped or value[:1] == MARKER_HEAD:
                    continue
                size = entry_size(key, server_key, value)
                if size > self.max_item_bytes:
                    continue
                old = entries.pop(key, None)
                if old is not None:
                    self._size -= old[2]
                entries[key] = (value, server_key, size)
                self._by_server_key[server_key] = key
                self._size += size
            while self._size > self.max_bytes:
                _key, (_value, old_server_key, old_size) = entries.popitem(last=False)
                del self._by_server_key[old_server_key]
                self._size -= old_size
                evicted += 1
            self.evictions += evicted
        if evicted:
            counters.incr("near_evictions", evicted)

    # -- invalidation --------------------------------------------------------------
    def invalidate(self, server_keys: Iterable[str], *, received: bool = True) -> int:
        """Evict these server keys and note them for the race check; returns evictions.

        ``received`` counts them as invalidations from the server (else a local write).
        """
        removed = count = 0
        with self._lock:
            entries, by_server_key, log = self._entries, self._by_server_key, self._log
            for server_key in server_keys:
                count += 1
                self._sequence += 1
                log.append(server_key)
                key = by_server_key.pop(server_key, None)
                if key is not None:
                    self._size -= entries.pop(key)[2]
                    removed += 1
            if received:
                self.invalidations += count
        if received and count:
            counters.incr("near_invalidations", count)
        return removed

    def forget(self, keys: Sequence[str]) -> None:
        """A local write of ``keys``: evict them, and refuse fills read before now."""
        if keys:
            self.invalidate(list(self._server_keys(keys)), received=False)

    def flush(self) -> None:
        """Empty the near cache; fills of reads begun before now are refused."""
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        self._entries.clear()
        self._by_server_key.clear()
        self._size = 0
        self._epoch += 1
        self.flushes += 1
        counters.incr("near_flushes")

    def set_live(self, live: bool) -> None:
        """Start or stop serving from memory; both transitions empty the near cache."""
        with self._lock:
            if live == self._live:
                return
            self._live = live
            self._flush_locked()

    # -- introspection -------------------------------------------------------------
    @property
    def size(self) -> int:
        """Accounted bytes of every entry (at most :attr:`max_bytes`)."""
        return self._size

    def keys(self) -> list[str]:
        """The keys held, least recently used first."""
        with self._lock:
            return list(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "live": self._live,
                "entries": len(self._entries),
                "bytes": self._size,
                "max_bytes": self.max_bytes,
                "hits": self.hits,
                "misses": self.misses,
                "evictions": self.evictions,
                "invalidations": self.invalidations,
                "flushes": self.flushes,
            }


# -- the invalidation connection -------------------------------------------------------
class TrackingLost(Exception):
    """The invalidation connection stopped answering (no reply to PING)."""


class RedisTracking:
    """The daemon thread holding the tracking connection of one :class:`NearStore`."""

    def __init__(
        self,
        store: NearStore,
        make_connection: Callable[[], Any],
        prefix: str,
        config: NearCacheConfig,
        unavailable_errors: tuple[type[BaseException], ...],
    ) -> None:
        self.store = store
        self.make_connection = make_connection
        self.prefix = prefix
        self.config = config
        self.unavailable_errors = unavailable_errors
        self.client_id: int | None = None
        """The server's id of the tracking connection while it is up."""
        self.connections = 0
        """Times tracking was established (1 after the first start, +1 per reconnect)."""
        self._stop = threading.Event()
        self._connection: Any = None
        self._thread = threading.Thread(
            target=self._run, name=f"instcache-near-{prefix}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        connection = self._connection
        if connection is not None:
            with contextlib.suppress(Exception):  # wakes the thread out of its read at once
                connection.disconnect()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        delay = FIRST_RECONNECT_DELAY
        while not self._stop.is_set():
            connection = None
            try:
                connection = self._connection = self.make_connection()
                self._subscribe(connection)
                if self._stop.is_set():
                    break
                self.connections += 1
                self.store.set_live(True)
                delay = FIRST_RECONNECT_DELAY
                self._listen(connection)
            except Exception as error:  # nothing may end the thread: reads would stay bypassed
                if self._stop.is_set():
                    pass  # closed: the read was interrupted on purpose
                elif isinstance(error, (*self.unavailable_errors, TrackingLost, ValueError)):
                    logger.warning(
                        "near cache %r: invalidation connection lost (%s); bypassed until "
                        "it is back",
                        self.prefix,
                        error,
                    )
                else:
                    logger.exception("near cache %r: invalidation thread failed", self.prefix)
            finally:
                self.store.set_live(False)
                self.client_id = None
                self._connection = None
                if connection is not None:
                    with contextlib.suppress(Exception):
                        connection.disconnect()
            if self._stop.wait(delay):
                break
            delay = min(delay * 2, self.config.max_reconnect_delay)

    def _subscribe(self, connection: Any) -> None:
        connection.connect()
        connection.send_command("CLIENT", "ID")
        client_id = int(connection.read_response())
        connection.send_command(
            "CLIENT", "TRACKING", "on", "REDIRECT", client_id, "BCAST", "PREFIX", f"{self.prefix}:"
        )
        reply = connection.read_response()
        if reply not in (b"OK", "OK"):
            raise TrackingLost(f"CLIENT TRACKING answered {reply!r}")
        connection.send_command("SUBSCRIBE", INVALIDATION_CHANNEL)
        reply = connection.read_response()
        if not (isinstance(reply, list) and reply and _text(reply[0]) == "subscribe"):
            raise TrackingLost(f"SUBSCRIBE answered {reply!r}")
        self.client_id = client_id

    def _listen(self, connection: Any) -> None:
        interval = self.config.health_check_interval
        ping_outstanding = False
        while not self._stop.is_set():
            if not connection.can_read(timeout=interval):
                if ping_outstanding:
                    raise TrackingLost(f"no answer to PING within {interval}s")
                connection.send_command("PING")
                ping_outstanding = True
                continue
            reply = connection.read_response()
            if not isinstance(reply, list) or not reply:
                continue
            kind = _text(reply[0])
            if kind == "pong":
                ping_outstanding = False
            elif kind == "message" and len(reply) == 3:
                keys = reply[2]
                if keys is None:  # FLUSHDB / FLUSHALL: everything changed
                    self.store.flush()
                else:
                    self.store.invalidate(_text(key) for key in keys)


def _text(value: Any) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else str(value)


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


def validate_setting(value: Any) -> None:
    """Raise :class:`ImproperlyConfigured` when a near-cache setting cannot work."""
    rest, config = split_setting(value)
    if config is None:
        return
    from drf_instcache.settings import build_backend

    adapter = build_backend(rest)
    try:
        find_redis_adapter(adapter)
    finally:
        adapter.close()


class NearCacheBackend:
    """Wrap a Redis-backed :class:`Backend` with a per-process near cache.

    Same protocol; wrapping a backend with conditional writes gives a
    :class:`LeasingNearCacheBackend` (the wrapper neither hides nor adds a capability).
    The tracking thread starts at first read (and again in a forked child, or after
    :meth:`close`); until it has subscribed, reads go to Redis.
    """

    after_read: Callable[[Sequence[str]], object] | None = None
    """Test hook: called with the keys fetched, between Redis's reply and the fill."""

    def __new__(cls, backend: Backend, config: NearCacheConfig) -> Any:
        if cls is NearCacheBackend and supports_leases(backend):
            cls = LeasingNearCacheBackend
        return super().__new__(cls)

    def __init__(self, backend: Backend, config: NearCacheConfig) -> None:
        self.backend = backend
        self.config = config
        self.adapter = find_redis_adapter(backend)
        self.store = NearStore(config.max_bytes, config.max_item_bytes, self.adapter.server_keys)
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
        if not keys:
            return {}
        if self._tracking_pid != os.getpid():
            self.start_tracking()
        found, missing, ticket = self.store.lookup(keys)
        if not missing:
            return found
        fetched = self.backend.get_many(missing)
        if fetched:
            hook = self.after_read
            if hook is not None:
                hook(list(fetched))
            self.store.fill(fetched, ticket)
            found.update(fetched)
        return found

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
