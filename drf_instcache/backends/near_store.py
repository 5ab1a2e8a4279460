"""The near cache's memory: an LRU bounded by bytes, its reverse map and the race log.

It knows nothing of Redis (:mod:`drf_instcache.backends.near_tracking` feeds it
invalidations, :mod:`drf_instcache.backends.near` reads and fills it). Counts go to
:mod:`drf_instcache.backends.reporting` unless another ``count`` is given.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

from drf_instcache.backends import reporting
from drf_instcache.backends.markers import MARKER_HEAD
from drf_instcache.backends.reporting import Count
from drf_instcache.exceptions import ImproperlyConfigured

OPTION = "NEAR_CACHE"
"""The key of ``DRF_INSTCACHE_BACKEND["OPTIONS"]`` that turns the near cache on."""

DEFAULT_HEALTH_CHECK_INTERVAL = 1.0
DEFAULT_MAX_RECONNECT_DELAY = 1.0
RACE_LOG_SIZE = 65_536
"""Invalidated keys remembered for the read/invalidate race check."""
PAGE_SHARE = 4
"""Kept answers (:meth:`NearStore.keep_answer`) use at most ``max_bytes // PAGE_SHARE``."""
PAGE_LOOKBACK = 1024
"""Invalidations an answer's check reads through before it gives up (and recomputes)."""
ENTRY_OVERHEAD = 240
"""Bytes accounted per entry besides the value, key and server key objects: the LRU's
slot and link, the reverse map's slot, the entry tuple and its size (measured with
tracemalloc on CPython 3.11-3.13 at about 200; rounded up)."""

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


@dataclass(slots=True)
class _Answer:
    """A whole answer computed from near-cache reads (a warm list's body), and what
    it was computed from: the server keys read, and the ticket it was last valid at."""

    value: Any
    server_keys: frozenset[str]
    ticket: Ticket
    size: int


class NearStore:
    """The in-memory part: an LRU bounded by bytes, its reverse map and the race log.

    Thread-safe (one lock). Knows nothing of Redis: the tracking thread calls
    :meth:`set_live` and :meth:`invalidate`, the backend wrapper the rest.
    """

    def __init__(
        self,
        max_bytes: int,
        max_item_bytes: int,
        server_keys: Callable[[Sequence[str]], dict],
        count: Count = reporting.count,
    ) -> None:
        self._count = count
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
        self._answers: OrderedDict[Any, _Answer] = OrderedDict()
        self._answers_size = 0
        self.hits = self.misses = self.evictions = self.invalidations = self.flushes = 0
        self.answers_served = 0

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
            self._count("near_hits", len(found))
        if missing:
            self._count("near_misses", len(missing))
        return found, missing, ticket

    def fill(self, items: Mapping[str, bytes], ticket: Ticket | None) -> None:
        """Keep what a read fetched, unless its key was invalidated since ``ticket``."""
        if ticket is None or not items:
            return
        mapping = self._server_keys(list(items))
        evicted = 0
        with self._lock:
            changed = self._invalidated_since(ticket, RACE_LOG_SIZE)
            if changed is None:
                return  # flushed since, or too far behind to tell which keys changed
            skipped = set(changed)
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
            evicted = self._evict_locked()
        if evicted:
            self._count("near_evictions", evicted)

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
            self._count("near_invalidations", count)
        return removed

    def announced(self, server_key: str) -> bool:
        """Whether an invalidation of ``server_key`` was taken in lately (in the race log)."""
        with self._lock:
            return server_key in self._log

    def forget(self, keys: Sequence[str]) -> None:
        """A local write of ``keys``: evict them, and refuse fills read before now."""
        if keys:
            self.invalidate(list(self._server_keys(keys)), received=False)

    def flush(self) -> None:
        """Empty the near cache; fills of reads begun before now are refused."""
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        self._answers.clear()
        self._answers_size = 0
        self._entries.clear()
        self._by_server_key.clear()
        self._size = 0
        self._epoch += 1
        self.flushes += 1
        self._count("near_flushes", 1)

    def set_live(self, live: bool) -> None:
        """Start or stop serving from memory; both transitions empty the near cache."""
        with self._lock:
            if live == self._live:
                return
            self._live = live
            self._flush_locked()

    def _evict_locked(self) -> int:
        """Drop least recently used entries (then answers) until within the bound."""
        evicted = 0
        entries = self._entries
        while self._size + self._answers_size > self.max_bytes:
            if entries:
                _key, (_value, old_server_key, old_size) = entries.popitem(last=False)
                del self._by_server_key[old_server_key]
                self._size -= old_size
            else:
                self._answers_size -= self._answers.popitem(last=False)[1].size
            evicted += 1
        self.evictions += evicted
        return evicted

    # -- kept answers ----------------------------------------------------------------
    def mark(self) -> Ticket | None:
        """The ticket of a computation about to read through this store (None: bypassed)."""
        with self._lock:
            return (self._epoch, self._sequence) if self._live else None

    def keep_answer(
        self, key: Any, value: Any, nbytes: int, read: Sequence[str], ticket: Ticket | None
    ) -> bool:
        """Keep ``value`` (``nbytes`` large), computed from the keys ``read`` since
        ``ticket``, under ``key``.

        Refused (False) when one of those keys was invalidated since the ticket (the
        answer may hold an older value), or when it is too large. It is then served by
        :meth:`answer` for as long as none of them is invalidated.
        """
        if ticket is None:
            return False
        server_keys = frozenset(self._server_keys(list(dict.fromkeys(read))))
        size = (
            nbytes
            + sys.getsizeof(server_keys)
            + sum(map(sys.getsizeof, server_keys))
            + ENTRY_OVERHEAD
        )
        if size > self.max_item_bytes:
            return False
        evicted = 0
        with self._lock:
            current = self._still_valid(ticket, server_keys)
            if current is None:
                return False
            old = self._answers.pop(key, None)
            if old is not None:
                self._answers_size -= old.size
            self._answers[key] = _Answer(value, server_keys, current, size)
            self._answers_size += size
            while self._answers_size > self.max_bytes // PAGE_SHARE:
                self._answers_size -= self._answers.popitem(last=False)[1].size
                evicted += 1
            self.evictions += evicted
            evicted += self._evict_locked()
        if evicted:
            self._count("near_evictions", evicted)
        return True

    def answer(self, key: Any) -> Any:
        """A kept answer none of whose keys was invalidated since it was computed."""
        with self._lock:
            kept = self._answers.get(key)
            if kept is None:
                return None
            current = self._still_valid(kept.ticket, kept.server_keys)
            if current is None:
                self._answers_size -= self._answers.pop(key).size
                return None
            kept.ticket = current
            self._answers.move_to_end(key)
            self.answers_served += 1
        self._count("near_answers", 1)
        return kept.value

    def _still_valid(self, ticket: Ticket, server_keys: frozenset[str]) -> Ticket | None:
        """The current ticket if no key of ``server_keys`` was invalidated since ``ticket``."""
        changed = self._invalidated_since(ticket, PAGE_LOOKBACK)
        if changed is None or not server_keys.isdisjoint(changed):
            return None
        return (self._epoch, self._sequence)

    def _invalidated_since(self, ticket: Ticket, lookback: int) -> Iterable[str] | None:
        """The server keys invalidated since ``ticket`` (newest first), or None when that
        cannot be told: not live, flushed since, or more than ``lookback`` (or the log)
        behind. Called with the lock held."""
        epoch, sequence = ticket
        if not self._live or epoch != self._epoch:
            return None
        behind = self._sequence - sequence
        if behind > lookback or behind > len(self._log):
            return None
        return islice(reversed(self._log), behind)

    # -- introspection -------------------------------------------------------------
    @property
    def size(self) -> int:
        """Accounted bytes of every entry and kept answer (at most :attr:`max_bytes`)."""
        return self._size + self._answers_size

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
                "answers": len(self._answers),
                "answers_served": self.answers_served,
                "bytes": self._size + self._answers_size,
                "max_bytes": self.max_bytes,
                "hits": self.hits,
                "misses": self.misses,
                "evictions": self.evictions,
                "invalidations": self.invalidations,
                "flushes": self.flushes,
            }


# -- the invalidation connection -------------------------------------------------------
