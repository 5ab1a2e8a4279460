"""The shared counters: every process publishes its own counts; readers add them up.

Each process writes only its *own* cumulative counts under its own key (the Backend
protocol has no atomic increments) and readers sum them. A small index key lists the
processes; an *epoch* key names the current counting period, so :func:`reset_shared`
starts a new one. Publishing is batched: at most once per
``DRF_INSTCACHE_STATS_FLUSH_INTERVAL`` seconds.
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
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from drf_instcache import settings as instcache_settings
from drf_instcache.backends.base import supports_leases
from drf_instcache.core import counters, outage
from drf_instcache.core.counters import Stats, Tally
from drf_instcache.core.namespaces import STATS_NAMESPACE
from drf_instcache.exceptions import BackendUnavailable, ImproperlyConfigured, ValueTooLarge

logger = logging.getLogger(__name__)

HEADER = "X-Instcache"
"""Response header carrying one request's counters when debug headers are on."""


HEADER_COUNTERS = ("hits", "misses", "fallbacks", "errors")


DEBUG_HEADERS_SETTING = "DRF_INSTCACHE_DEBUG_HEADERS"


FLUSH_INTERVAL_SETTING = "DRF_INSTCACHE_STATS_FLUSH_INTERVAL"


DEFAULT_FLUSH_INTERVAL = 10.0


SHARED_KEY_PREFIX = STATS_NAMESPACE
"""Reserved keys of the shared aggregate; instance keys start with ``dic:``."""


EPOCH_KEY = f"{SHARED_KEY_PREFIX}:epoch"


INDEX_KEY = f"{SHARED_KEY_PREFIX}:index"


SHARED_TTL = 30 * 24 * 3600
"""Lifetime of the shared keys, refreshed by each flush of a live process."""


_INITIAL_EPOCH = "0"
"""The epoch before any reset: a constant, so processes starting together agree on it."""


def _setting(name: str, default: Any) -> Any:
    """``DRF_INSTCACHE_<name>`` through the one settings memo (:mod:`drf_instcache.settings`)."""
    return instcache_settings.get_setting(name.removeprefix("DRF_INSTCACHE_"), default)


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
    outage.note_request(counts)
    flush_if_due()
    return response


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
        self.published = Tally()  # what this process's key holds, in self.epoch
        self.last_attempt = -math.inf
        self.lock = threading.Lock()


_publisher = _Publisher()


def _configured_backend() -> Any:
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
        pending = counters.take_unpublished()
        if not pending:
            return False
        try:
            _publish(backend, publisher, pending)
        except (BackendUnavailable, ValueTooLarge) as error:  # never fail the request
            counters.give_back(pending)
            logger.debug("drf-instcache: could not publish statistics: %s", error)
            return False
        return True
    finally:
        publisher.lock.release()


def _publish(backend: Any, publisher: _Publisher, pending: Tally) -> None:
    head = backend.get_many([EPOCH_KEY, INDEX_KEY])
    now = time.time()
    items: dict[str, bytes] = {}
    epoch = _decode(head.get(EPOCH_KEY))
    if not isinstance(epoch, dict) or "id" not in epoch:
        # No epoch yet, or it expired: keep counting in the one this process knows.
        epoch = publisher.epoch or {"id": _INITIAL_EPOCH, "since": now}
        items[EPOCH_KEY] = _encode(epoch)
    if publisher.epoch is None or publisher.epoch.get("id") != epoch["id"]:
        publisher.published = Tally()  # a reset happened: count anew from here
    publisher.epoch = epoch
    total = Tally()
    total.merge(publisher.published)
    total.merge(pending)
    entry = {
        "epoch": epoch["id"],
        "process": publisher.process_id,
        "updated": now,
        **total.as_json(),
    }
    items[process_key(publisher.process_id)] = _encode(entry)
    listed = _listed(head.get(INDEX_KEY), publisher.process_id, now)
    if listed is not None and not supports_leases(backend):
        items[INDEX_KEY] = listed  # no compare-and-set: two first publications may race
        listed = None
    backend.set_many(items, timeout=SHARED_TTL)
    if listed is not None:
        _list_process(backend, head.get(INDEX_KEY), listed, publisher.process_id, now)
    publisher.published = total


INDEX_ATTEMPTS = 8
"""Compare-and-set rounds of the index before giving up until the next flush."""


def _listed(raw: bytes | None, process_id: str, now: float) -> bytes | None:
    """The index with this process listed (and expired ones dropped), or None when it
    is listed recently enough."""
    index = _decode(raw)
    if not isinstance(index, dict):
        index = {}
    last_seen = index.get(process_id)
    if isinstance(last_seen, int | float) and now - last_seen <= SHARED_TTL / 2:
        return None
    index = {pid: seen for pid, seen in index.items() if now - float(seen) < SHARED_TTL}
    index[process_id] = now
    return _encode(index)


def _list_process(
    backend: Any, raw: bytes | None, listed: bytes, process_id: str, now: float
) -> None:
    """Write the index with this process in it, over what was read (compare-and-set), so
    processes publishing for the first time at once do not drop each other."""
    for _ in range(INDEX_ATTEMPTS):
        if raw is None:
            won = backend.add_many({INDEX_KEY: listed}, timeout=SHARED_TTL)
        else:
            won = backend.compare_and_set_many({INDEX_KEY: (raw, listed)}, timeout=SHARED_TTL)
        if won:
            return
        raw = backend.get_many([INDEX_KEY]).get(INDEX_KEY)
        again = _listed(raw, process_id, now)
        if again is None:
            return
        listed = again
    logger.debug("drf-instcache: statistics index busy; this process is listed next flush")


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
        return Tally().stats(since=None, processes=0, shared=True)
    if include_self:
        flush(backend)
    epoch, raw = _read_shared_keys(backend)
    total = Tally()
    processes = 0
    for key, value in raw.items():
        if key in (EPOCH_KEY, INDEX_KEY):
            continue
        entry = _decode(value)
        if isinstance(entry, dict) and epoch is not None and entry.get("epoch") == epoch["id"]:
            total.merge(Tally.from_json(entry))
            processes += 1
    since = epoch.get("since") if epoch is not None else None
    return total.stats(since=since, processes=processes, shared=True)


def reset_shared(backend: Any = None) -> None:
    """Start the shared aggregate over (and this process's counters).

    Other processes notice the new epoch at their next flush and start their published
    counts over; what they counted since their previous flush lands in the new epoch.
    """
    backend = backend if backend is not None else _configured_backend()
    counters.reset()
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
        _publisher.published = Tally()


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


def _forget_parent() -> None:
    """A forked child publishes for itself, under its own process id."""
    global _publisher
    _publisher = _Publisher()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_parent)
