"""Counters of what the cache did (hits, misses, failures), per process and per request.

:func:`snapshot`/:func:`current` count since the process started (or :func:`reset`),
lookups also per model; :func:`tracking` counts what one block of code (one request)
did. Publishing them to the shared aggregate is :mod:`drf_instcache.core.shared_stats`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

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
    "near_answers",  # warm list bodies served whole from the near cache
)
"""Every counter, in display order."""

MODEL_COUNTERS = ("hits", "misses", "fallbacks")
"""The counters also kept per model (lookups are what differ between models)."""


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


class Tally:
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

    def merge(self, other: Tally) -> None:
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
    def from_json(cls, data: Mapping[str, Any]) -> Tally:
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
_process = Tally()
"""Everything counted since the process started or :func:`reset`."""
_unpublished = Tally()
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


def take_unpublished() -> Tally:
    """What was counted since the last publication; the caller publishes it."""
    with _lock:
        pending = Tally()
        pending.merge(_unpublished)
        _unpublished.clear()
    return pending


def give_back(pending: Tally) -> None:
    """Counts whose publication failed: kept for the next one."""
    with _lock:
        _unpublished.merge(pending)


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


# -- the shared aggregate ----------------------------------------------------------------


# -- fork safety -----------------------------------------------------------------------
def _forget_parent() -> None:
    """A forked child counts for itself: its parent's counts are the parent's."""
    global _lock
    _lock = threading.Lock()
    reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_parent)


# -- settings checks ---------------------------------------------------------------------
