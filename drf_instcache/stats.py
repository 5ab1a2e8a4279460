"""Per-process counters of what the cache did: hits, misses, failures.

They answer "is the cache working?" without a profiler: a hit ratio near zero, or a
growing error count, shows up in ``manage.py instcache stats`` or a health endpoint.
Counters are per process and reset on restart; they are not metrics storage.
"""

from __future__ import annotations

import threading
from collections import Counter

COUNTERS = (
    "hits",  # instances served from the cache
    "misses",  # instances not in the cache (loaded from the database)
    "corrupt",  # values that could not be decoded (treated as misses)
    "loaded",  # instances loaded and serialized
    "stored",  # instances written to the cache
    "too_large",  # instances the backend refused for their size
    "deleted",  # keys deleted by updates and invalidation
    "errors",  # backend calls that failed with BackendUnavailable
)

_lock = threading.Lock()
_counts: Counter[str] = Counter()


def incr(name: str, amount: int = 1) -> None:
    """Add ``amount`` to the counter ``name``."""
    if amount:
        with _lock:
            _counts[name] += amount


def snapshot() -> dict[str, int]:
    """The current value of every counter (zero for those never incremented)."""
    with _lock:
        return {
            name: _counts.get(name, 0)
            for name in (*COUNTERS, *sorted(set(_counts) - set(COUNTERS)))
        }


def hit_ratio() -> float | None:
    """Hits over hits plus misses, or None before the first lookup."""
    with _lock:
        total = _counts["hits"] + _counts["misses"]
        return _counts["hits"] / total if total else None


def reset() -> None:
    """Set every counter back to zero."""
    with _lock:
        _counts.clear()
