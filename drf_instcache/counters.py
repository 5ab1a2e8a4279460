"""Counters of what the cache did (hits, misses, failures), per process and shared.

They answer "is the cache working?" without a profiler: a hit ratio near zero, or a
growing error count, shows up in ``drf_instcache.stats()``, in ``manage.py instcache
stats``, in a ``DEBUG`` log line per request and, with ``DRF_INSTCACHE_DEBUG_HEADERS =
True``, in an ``X-Instcache`` response header.

Three scopes:

* **process**: :func:`snapshot` and :func:`current` count since the process started (or
  :func:`reset`); lookups are also counted per model;
* **request**: :func:`tracking` counts what one block of code (one API request) did;
* **shared**: every process adds what it counted to an aggregate kept in the cache
  backend itself, under reserved ``dic-stats:`` keys of the configured namespace, so
  several workers (and machines, on a network backend) add up. Publishing is batched:
  at the end of a request, at most once per ``DRF_INSTCACHE_STATS_FLUSH_INTERVAL``
  seconds (default 10), so the request path costs no extra round trip otherwise.

How the shared aggregate stays correct without atomic increments (the Backend
protocol has none): each process writes only its *own* cumulative counts under its own
key, and readers sum them. A small index key lists the processes; an *epoch* key names
the current counting period. :func:`reset_shared` starts a new epoch, and each process
starts its published counts over when it sees one. Two processes adding themselves to
the index at the same instant may drop one of them for one flush interval; it adds
itself back at its next flush. A process that stopped drops out of the totals when its
key expires (:data:`SHARED_TTL`, 30 days after its last flush).
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from django.core.signals import setting_changed

from drf_instcache.checks import add_check
from drf_instcache.exceptions import BackendUnavailable, ImproperlyConfigured, ValueTooLarge

logger = logging.getLogger("drf_instcache.stats")

COUNTERS = (
    "hits",  # instances served from the cache
    "misses",  # instances not served from the cache (loaded from the database)
    "fallbacks",  # misses because the backend failed (a subset of misses)
    "corrupt",  # values that could not be decoded (treated as misses)
    "loaded",  # instances loaded and serialized
    "stored",  # instances written to the cache
    "too_large",  # instances the backend refused for their size
    "deleted",  # keys deleted by updates and invalidation
    "errors",  # backend calls that failed with BackendUnavailable
    "waited",  # instances a reader waited for while another request filled them
    "fills_refused",  # fills refused because a write claimed the key first
    "near_hits",  # keys served from this process's near cache (NEAR_CACHE)
    "near_misses",  # keys the near cache asked Redis for
    "near_evictions",  # near-cache entries dropped to stay within MAX_BYTES
    "near_invalidations",  # keys named by Redis invalidation messages
    "near_flushes",  # times the near cache was emptied (connection lost or back, clear)
)
"""Every counter, in display order."""

MODEL_COUNTERS = ("hits", "misses", "fallbacks")
"""The counters also kept per model (lookups are what differ between models)."""

HEADER = "X-Instcache"
"""Response header carrying one request's counters when debug headers are on."""

HEADER_COUNTERS = ("hits", "misses", "fallbacks", "errors")

DEBUG_HEADERS_SETTING = "DRF_INSTCACHE_DEBUG_HEADERS"
FLUSH_INTERVAL_SETTING = "DRF_INSTCACHE_STATS_FLUSH_INTERVAL"
DEFAULT_FLUSH_INTERVAL = 10.0

SHARED_KEY_PREFIX = "dic-stats"
"""Reserved keys of the shared aggregate; instance keys start with ``dic:``."""
EPOCH_KEY = f"{SHARED_KEY_PREFIX}:epoch"
INDEX_KEY = f"{SHARED_KEY_PREFIX}:index"
SHARED_TTL = 30 * 24 * 3600
"""Lifetime of the shared keys, refreshed by each flush of a live process."""
_INITIAL_EPOCH = "0"
"""The epoch before any reset: a constant, so processes starting together agree on it."""


# -- snapshots -------------------------------------------------------------------------
@dataclass(frozen=True)
class Stats:
    """A snapshot of the counters: of this process, or summed over every process.

    ``counts`` holds every counter of :data:`COUNTERS`; ``models`` the lookup counters
    (:data:`MODEL_COUNTERS`) of each model name seen; ``since`` is the Unix time the
    counting began (process start, or the last reset); ``processes`` how many processes
    the numbers add up (1 for a process snapshot).
    """

    counts: Mapping[str, int]
    models: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    since: float | None = None
    processes: int = 1
    shared: bool = False

    @property
    def hits(self) -> int:
        """Instances served from the cache."""
        return self.counts.get("hits", 0)

    @property
    def misses(self) -> int:
        """Instances loaded from the database instead (fallbacks included)."""
        return self.counts.get("misses", 0)

    @property
    def fallbacks(self) -> int:
        """Misses caused by a failing backend rather than a missing entry."""
        return self.counts.get("fallbacks", 0)

    @property
    def errors(self) -> int:
        """Backend calls that failed."""
        return self.counts.get("errors", 0)

    @property
    def hit_ratio(self) -> float | None:
        """Hits over hits plus misses, or None before the first lookup."""
        total = self.hits + self.misses
        return self.hits / total if total else None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able form (for health endpoints and ``instcache stats --json``)."""
        return {
            "scope": "shared" if self.shared else "process",
            "since": self.since,
            "processes": self.processes,
            "hit_ratio": self.hit_ratio,
            "counts": dict(self.counts),
            "models": {name: dict(counts) for name, counts in self.models.items()},
        }


def _ordered(counts: Mapping[str, int], names: Iterable[str] = COUNTERS) -> dict[str, int]:
    """Every known counter (zero when never incremented), then any others, sorted."""
    names = tuple(names)
    return {name: int(counts.get(name, 0)) for name in (*names, *sorted(set(counts) - set(names)))}


class _Tally:
    """Totals plus per-model lookup counts."""

    def __init__(self) -> None:
        self.totals: Counter[str] = Counter()
        self.models: dict[str, Counter[str]] = {}

    def clear(self) -> None:
        self.totals.clear()
        self.models.clear()

    def add(self, name: str, amount: int, model: str | None) -> None:
        self.totals[name] += amount
        if model is not None:
            self.models.setdefault(model, Counter())[name] += amount

    def merge(self, other: _Tally) -> None:
        self.totals.update(other.totals)
        for model, counts in other.models.items():
            self.models.setdefault(model, Counter()).update(counts)

    def __bool__(self) -> bool:
        return any(self.totals.values())

    def as_json(self) -> dict[str, Any]:
        return {
            "counts": {k: v for k, v in self.totals.items() if v},
            "models": {m: {k: v for k, v in c.items() if v} for m, c in self.models.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> _Tally:
        tally = cls()
        tally.totals.update({str(k): int(v) for k, v in (data.get("counts") or {}).items()})
        for model, counts in (data.get("models") or {}).items():
            tally.models[str(model)] = Counter({str(k): int(v) for k, v in counts.items()})
        return tally

    def stats(self, since: float | None, processes: int = 1, shared: bool = False) -> Stats:
        return Stats(
            counts=_ordered(self.totals),
            models={
                model: _ordered(counts, MODEL_COUNTERS)
                for model, counts in sorted(self.models.items())
            },
            since=since,
            processes=processes,
            shared=shared,
        )


# -- the process's counters ------------------------------------------------------------
_lock = threading.Lock()
_process = _Tally()
"""Everything counted since the process started or :func:`reset`."""
_unpublished = _Tally()
"""Counted but not yet added to the shared aggregate."""
_since = time.time()
_trackers: ContextVar[tuple[Counter[str], ...]] = ContextVar("drf_instcache_trackers", default=())


def incr(name: str, amount: int = 1, model: str | None = None) -> None:
    """Add ``amount`` to the counter ``name`` (and to ``model``'s, when given)."""
    if not amount:
        return
    model = model.lower() if model is not None else None
    with _lock:
        _process.add(name, amount, model)
        _unpublished.add(name, amount, model)
    for tracker in _trackers.get():
        tracker[name] += amount


def incr_per_model(name: str, models: Iterable[str]) -> None:
    """Count one ``name`` event for each model name in ``models`` (one per instance)."""
    per_model: Counter[str] = Counter()
    for model, amount in Counter(models).items():  # lower-case each distinct name once
        per_model[model.lower()] += amount
    if not per_model:
        return
    total = sum(per_model.values())
    with _lock:
        for model, amount in per_model.items():
            _process.add(name, amount, model)
            _unpublished.add(name, amount, model)
    for tracker in _trackers.get():
        tracker[name] += total


def current() -> Stats:
    """This process's counters, per model too, since it started or :func:`reset`."""
    with _lock:
        return _process.stats(since=_since)


def snapshot() -> dict[str, int]:
    """The current value of every counter of this process (zero if never incremented)."""
    with _lock:
        return _ordered(_process.totals)


def hit_ratio() -> float | None:
    """This process's hits over hits plus misses, or None before the first lookup."""
    return current().hit_ratio


def reset() -> None:
    """Set this process's counters back to zero (what it has not published is dropped)."""
    global _since
    with _lock:
        _process.clear()
        _unpublished.clear()
        _since = time.time()


@contextmanager
def tracking() -> Iterator[Counter[str]]:
    """Count what the enclosed code does, in addition to the process counters.

    The counter is per context (thread, or asyncio task), so concurrent requests do not
    mix; nested blocks each see their own events and their callers' blocks see them too.
    """
    counts: Counter[str] = Counter()
    token = _trackers.set((*_trackers.get(), counts))
    try:
        yield counts
    finally:
        _trackers.reset(token)


# -- one request -----------------------------------------------------------------------
_read_settings: dict[str, Any] = {}
"""Settings read on every request, kept until ``setting_changed`` says otherwise."""


def _setting(name: str, default: Any) -> Any:
    try:
        return _read_settings[name]
    except KeyError:
        from django.conf import settings

        value = _read_settings[name] = getattr(settings, name, default)
        return value


def forget_settings(setting: str = "", **kwargs: Any) -> None:
    """Read the settings afresh at next use (connected to Django's ``setting_changed``)."""
    if not setting or setting in _read_settings:
        _read_settings.clear()


def debug_headers_enabled() -> bool:
    """True when ``DRF_INSTCACHE_DEBUG_HEADERS`` asks for the ``X-Instcache`` header."""
    return bool(_setting(DEBUG_HEADERS_SETTING, False))


def header_value(counts: Mapping[str, int]) -> str:
    """``hits=98 misses=2 fallbacks=0 errors=0``: one request's counters, for humans."""
    return " ".join(f"{name}={counts.get(name, 0)}" for name in HEADER_COUNTERS)


def finish_request(request: Any, response: Any, counts: Mapping[str, int]) -> Any:
    """Report one request's counters: DEBUG log, optional header, shared flush when due.

    Called by :class:`~drf_instcache.mixins.CachedViewMixin` once the response exists;
    returns the response.
    """
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug(
            "drf-instcache: %s %s %s",
            getattr(request, "method", "?"),
            getattr(request, "path", "?"),
            header_value(counts),
        )
    if response is not None and debug_headers_enabled():
        response[HEADER] = header_value(counts)
    flush_if_due()
    return response


# -- the shared aggregate ----------------------------------------------------------------
def flush_interval() -> float | None:
    """Seconds between publications (0: every request; None: never), from settings."""
    value = _setting(FLUSH_INTERVAL_SETTING, DEFAULT_FLUSH_INTERVAL)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ImproperlyConfigured(
            f"{FLUSH_INTERVAL_SETTING} must be a number of seconds >= 0 (0: publish after "
            f"every request) or None (never publish), not {value!r}"
        )
    return float(value)


def process_key(process_id: str) -> str:
    """The reserved key holding one process's published counts."""
    return f"{SHARED_KEY_PREFIX}:process:{process_id}"


def _new_process_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _encode(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), sort_keys=True).encode()


def _decode(raw: bytes | None) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(bytes(raw))
    except ValueError:
        return None  # unreadable: treated as absent, and rewritten


class _Publisher:
    """This process's side of the shared aggregate."""

    def __init__(self) -> None:
        self.process_id = _new_process_id()
        self.epoch: dict[str, Any] | None = None  # {"id": ..., "since": ...} last seen
        self.published = _Tally()  # what this process's key holds, in self.epoch
        self.last_attempt = -math.inf
        self.lock = threading.Lock()


_publisher = _Publisher()


def _configured_backend() -> Any:
    from drf_instcache import settings as instcache_settings

    if not instcache_settings.enabled():
        return None
    return instcache_settings.get_backend()


def flush_if_due() -> None:
    """Publish this process's counts when the flush interval has passed (cheap otherwise)."""
    interval = flush_interval()
    now = time.monotonic()
    if interval is None or now - _publisher.last_attempt < interval:
        return
    _publisher.last_attempt = now
    try:
        flush()
    except Exception:  # statistics must never fail the request that publishes them
        logger.warning("drf-instcache: publishing statistics failed", exc_info=True)


def flush(backend: Any = None) -> bool:
    """Add what this process counted since its last flush to the shared aggregate.

    Two round trips: read the epoch and index, write this process's key (and the
    index when this process is not listed). Returns False when there was nothing to
    publish, another thread was publishing, or the backend failed (the counts are then
    kept for the next flush).
    """
    backend = backend if backend is not None else _configured_backend()
    if backend is None:
        return False
    publisher = _publisher
    if not publisher.lock.acquire(blocking=False):
        return False
    try:
        with _lock:
            if not _unpublished:
                return False
            pending = _Tally()
            pending.merge(_unpublished)
            _unpublished.clear()
        try:
            _publish(backend, publisher, pending)
        except (BackendUnavailable, ValueTooLarge) as error:  # never fail the request
            with _lock:
                _unpublished.merge(pending)
            logger.debug("drf-instcache: could not publish statistics: %s", error)
            return False
        return True
    finally:
        publisher.lock.release()


def _publish(backend: Any, publisher: _Publisher, pending: _Tally) -> None:
    head = backend.get_many([EPOCH_KEY, INDEX_KEY])
    now = time.time()
    items: dict[str, bytes] = {}
    epoch = _decode(head.get(EPOCH_KEY))
    if not isinstance(epoch, dict) or "id" not in epoch:
        # No epoch yet, or it expired: keep counting in the one this process knows.
        epoch = publisher.epoch or {"id": _INITIAL_EPOCH, "since": now}
        items[EPOCH_KEY] = _encode(epoch)
    if publisher.epoch is None or publisher.epoch.get("id") != epoch["id"]:
        publisher.published = _Tally()  # a reset happened: count anew from here
    publisher.epoch = epoch
    total = _Tally()
    total.merge(publisher.published)
    total.merge(pending)
    entry = {
        "epoch": epoch["id"],
        "process": publisher.process_id,
        "updated": now,
        **total.as_json(),
    }
    items[process_key(publisher.process_id)] = _encode(entry)
    index = _decode(head.get(INDEX_KEY))
    if not isinstance(index, dict):
        index = {}
    last_seen = index.get(publisher.process_id)
    if not isinstance(last_seen, int | float) or now - last_seen > SHARED_TTL / 2:
        index = {pid: seen for pid, seen in index.items() if now - float(seen) < SHARED_TTL}
        index[publisher.process_id] = now
        items[INDEX_KEY] = _encode(index)
    backend.set_many(items, timeout=SHARED_TTL)
    publisher.published = total


def _read_shared_keys(backend: Any) -> tuple[dict[str, Any] | None, dict[str, bytes]]:
    """The epoch, and the raw bytes of every reserved key (epoch, index, processes)."""
    head = backend.get_many([EPOCH_KEY, INDEX_KEY])
    index = _decode(head.get(INDEX_KEY))
    process_keys = [process_key(pid) for pid in index] if isinstance(index, dict) else []
    raw = dict(head)
    if process_keys:
        raw.update(backend.get_many(process_keys))
    epoch = _decode(head.get(EPOCH_KEY))
    return (epoch if isinstance(epoch, dict) else None), raw


def shared(backend: Any = None, include_self: bool = True) -> Stats:
    """The counters of every process that published to ``backend``, since the last reset.

    With ``include_self`` this process's unpublished counts are published first, so they
    are included (a management command reading the statistics passes False: its own
    work is not traffic). Raises :class:`~drf_instcache.exceptions.BackendUnavailable`
    when the backend fails.
    """
    backend = backend if backend is not None else _configured_backend()
    if backend is None:
        return _Tally().stats(since=None, processes=0, shared=True)
    if include_self:
        flush(backend)
    epoch, raw = _read_shared_keys(backend)
    total = _Tally()
    processes = 0
    for key, value in raw.items():
        if key in (EPOCH_KEY, INDEX_KEY):
            continue
        entry = _decode(value)
        if isinstance(entry, dict) and epoch is not None and entry.get("epoch") == epoch["id"]:
            total.merge(_Tally.from_json(entry))
            processes += 1
    since = epoch.get("since") if epoch is not None else None
    return total.stats(since=since, processes=processes, shared=True)


def reset_shared(backend: Any = None) -> None:
    """Start the shared aggregate over (and this process's counters).

    Other processes notice the new epoch at their next flush and start their published
    counts over; what they counted since their previous flush lands in the new epoch.
    """
    backend = backend if backend is not None else _configured_backend()
    reset()
    if backend is None:
        return
    _epoch, raw = _read_shared_keys(backend)
    epoch = {"id": uuid.uuid4().hex, "since": time.time()}
    stale = [key for key in raw if key not in (EPOCH_KEY, INDEX_KEY)]
    if stale:
        backend.delete_many(stale)
    backend.set_many({EPOCH_KEY: _encode(epoch), INDEX_KEY: _encode({})}, timeout=SHARED_TTL)
    with _publisher.lock:
        _publisher.epoch = epoch
        _publisher.published = _Tally()


@contextmanager
def kept_across_clear(backend: Any) -> Iterator[None]:
    """Keep the shared statistics through a ``backend.clear()`` run in the block.

    ``clear`` empties the whole namespace, reserved keys included; statistics are not
    cached data, so they are read before and written back after.
    """
    _epoch, raw = _read_shared_keys(backend)
    yield
    if raw:
        backend.set_many(raw, timeout=SHARED_TTL)


setting_changed.connect(forget_settings, dispatch_uid="drf_instcache.counters.settings")


# -- fork safety -----------------------------------------------------------------------
def _forget_parent() -> None:
    """A forked child counts for itself: its parent's counts are the parent's."""
    global _lock, _publisher
    _lock = threading.Lock()
    _publisher = _Publisher()
    reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_parent)


# -- settings checks ---------------------------------------------------------------------
@add_check
def check_settings() -> list[Any]:
    """System check: the statistics settings have usable values."""
    from django.conf import settings
    from django.core.checks import Error

    errors: list[Any] = []
    try:
        flush_interval()
    except ImproperlyConfigured as error:
        errors.append(
            Error(
                str(error),
                hint="Remove it for the default (10 seconds).",
                id="drf_instcache.E010",
            )
        )
    headers = getattr(settings, DEBUG_HEADERS_SETTING, False)
    if not isinstance(headers, bool):
        errors.append(
            Error(
                f"{DEBUG_HEADERS_SETTING} must be True or False, not {headers!r}.",
                hint="Set it to True to add the X-Instcache header to cached views' responses.",
                id="drf_instcache.E011",
            )
        )
    return errors
