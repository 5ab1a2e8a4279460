"""Keys an invalidation could not reach: deleted as soon as the backend answers again.

When the cache server is down (or hung) while a row changes, the write to the database
succeeds and the cache update is dropped with a warning. If the server then comes back
with its data (a network partition, a paused process, a failover to a replica), it still
holds the entry as it was before the change. So every key whose refresh or delete
failed is remembered, per backend and per process, and deleted before the next call
that reaches that backend: deleting is always safe (at worst a miss).

The memory is bounded (:data:`LIMIT` keys per backend); beyond it the oldest keys are
dropped with an error log, since those entries may then stay stale until they expire.

Besides keys, a caller may :func:`defer` work (a cascade that stopped when the backend
failed); it runs once the remembered keys are deleted, before the call that found the
backend answering goes on, so a replayed invalidation lands before that call's fills.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any, Protocol

logger = logging.getLogger(__name__)

LIMIT = 10_000
"""Most keys remembered per backend."""

_lock = threading.Lock()
_keys: weakref.WeakKeyDictionary[Any, dict[str, None]] = weakref.WeakKeyDictionary()
_work: weakref.WeakKeyDictionary[Any, list[Callable[[], None]]] = weakref.WeakKeyDictionary()


class Journal(Protocol):
    """A durable store for what is remembered here (the invalidation layer's outbox)."""

    def record_keys(self, backend: Any, keys: Iterable[str]) -> bool: ...

    def due(self, backend: Any) -> bool: ...

    def drain(self, backend: Any) -> None: ...


_journal: list[Journal] = []


def set_journal(journal: Journal | None) -> None:
    """Keep what is remembered durably (None: in this process's memory only)."""
    _journal[:] = [journal] if journal is not None else []


def journal_due(backend: Any) -> bool:
    """Whether the durable store holds records for ``backend`` (cheap most of the time)."""
    return bool(_journal) and _journal[0].due(backend)


def drain_journal(backend: Any) -> None:
    """Apply the durable store's records to ``backend`` (keys first, then refreshes)."""
    if _journal:
        _journal[0].drain(backend)


def remember(backend: Any, keys: Iterable[str]) -> None:
    """Note that ``keys`` may hold stale entries on ``backend``."""
    keys = list(keys)
    if _journal and _journal[0].record_keys(backend, keys):
        return
    with _lock:
        pending = _keys.setdefault(backend, {})
        pending.update(dict.fromkeys(keys))
        overflow = len(pending) - LIMIT
        if overflow > 0:
            for key in list(pending)[:overflow]:
                del pending[key]
    if overflow > 0:
        logger.error(
            "drf-instcache: more than %d keys failed to invalidate during a cache outage; "
            "%d of them may stay stale until they expire (clear the cache to be sure)",
            LIMIT,
            overflow,
        )


def defer(backend: Any, work: Callable[[], None]) -> None:
    """Run ``work`` once ``backend`` answers again (after the remembered keys are deleted)."""
    with _lock:
        _work.setdefault(backend, []).append(work)


def pending(backend: Any) -> bool:
    """Whether keys or work wait for ``backend`` (cheap: called on every read)."""
    return (
        (bool(_keys) and backend in _keys)
        or (bool(_work) and backend in _work)
        or journal_due(backend)
    )


def take_work(backend: Any) -> list[Callable[[], None]]:
    """Remove and return the work deferred for ``backend``."""
    with _lock:
        return _work.pop(backend, [])


def take(backend: Any) -> list[str]:
    """Remove and return the keys waiting for ``backend``."""
    with _lock:
        return list(_keys.pop(backend, {}))


def forget_all() -> None:
    """Drop every remembered key (tests; or after clearing the cache by hand)."""
    with _lock:
        _keys.clear()
        _work.clear()
