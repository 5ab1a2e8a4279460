"""The dirty-transaction rule: a cache never sees what an open transaction wrote.

Invalidation runs when a transaction commits, so until then the cache holds the
committed state. Two things would go wrong without a rule:

* a read after the transaction's own write would be served the old committed entry
  (plain DRF returns the new row), and
* a miss filled from inside the transaction would store rows that a rollback undoes,
  to be served after it.

So every connection's statements are watched (a Django execute wrapper, installed when
a connection is made). Once an atomic block has written, cached reads on that
connection bypass the cache entirely (they are plain DRF reads, and fill nothing) until
the outermost block ends. Fills made inside a clean atomic block are deferred to its
commit, and dropped with a rollback.

A write is remembered by a no-op callback registered with ``on_commit``: Django drops
it with the transaction (or with a rolled-back savepoint), so the mark cannot outlive
what it marks.

Test helpers (:mod:`drf_instcache.testing.isolation`) can set a *baseline*: the atomic
blocks open at that moment (a ``TestCase``'s) count as the outside world, so a test's
statements behave as if committed and its invalidations run at once.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created

__all__ = [
    "add_schedule_observer",
    "after_commit",
    "dirty",
    "in_transaction",
    "install",
    "remove_schedule_observer",
    "set_baseline",
    "unless_rolled_back",
]

_READS = re.compile(r"\s*(?:SELECT|SAVEPOINT|RELEASE|ROLLBACK|EXPLAIN|SHOW)\b", re.IGNORECASE)
"""Statements that change no row (anything else counts as a write: the safe side)."""

_MARK = "_drf_instcache_write_mark"
_BASELINE = "_drf_instcache_baseline"


def _write_mark() -> None:
    """Registered with ``on_commit`` to remember a write; does nothing when run."""


def _depth(connection: BaseDatabaseWrapper) -> int:
    """Atomic blocks open on ``connection`` beyond the baseline."""
    if not connection.in_atomic_block:
        return 0
    return len(connection.atomic_blocks) - getattr(connection, _BASELINE, 0)


def _marked(connection: BaseDatabaseWrapper) -> bool:
    mark = getattr(connection, _MARK, None)
    if mark is None:
        return False
    index, callback = mark
    pending = connection.run_on_commit
    if index < len(pending) and pending[index][1] is callback:
        return True
    return any(entry[1] is callback for entry in pending)


def _mark(connection: BaseDatabaseWrapper) -> None:
    if _marked(connection):
        return

    def mark() -> None:  # a new function each time: its identity is the mark
        _write_mark()

    index = len(connection.run_on_commit)
    connection.on_commit(mark)
    setattr(connection, _MARK, (index, mark))


_BEFORE_WRITE = "_drf_instcache_before_write"


def _track(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
    connection = context["connection"]
    hooks = connection.__dict__.get(_BEFORE_WRITE)
    if hooks and not _READS.match(sql):
        connection.__dict__[_BEFORE_WRITE] = []
        for work in hooks:
            work()
    if _depth(connection) > 0 and not _READS.match(sql):
        _mark(connection)
    return execute(sql, params, many, context)


def watching(connection: BaseDatabaseWrapper) -> bool:
    """Whether this module sees ``connection``'s statements (see :func:`install`)."""
    return _track in connection.execute_wrappers


def before_next_write(connection: BaseDatabaseWrapper, work: Callable[[], None]) -> None:
    """Run ``work`` just before the next statement on ``connection`` that changes rows.

    Deletion signals come for every row before the first row is deleted: what must be
    read while the rows are as they were can then be read once, for all of them.
    """
    connection.__dict__.setdefault(_BEFORE_WRITE, []).append(work)


def _watch(connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    if _track not in connection.execute_wrappers:
        connection.execute_wrappers.append(_track)


_installed = False


def install() -> None:
    """Watch the statements of every connection (``AppConfig.ready`` calls it; so does
    the first cache strategy made, for projects that do not install the app)."""
    global _installed
    if _installed:
        return
    _installed = True
    connection_created.connect(_watch, dispatch_uid="drf_instcache.transactions")
    for connection in connections.all(initialized_only=True):
        _watch(connection)


def _open() -> Iterator[BaseDatabaseWrapper]:
    """The connections of this thread inside an atomic block beyond the baseline."""
    for connection in connections.all(initialized_only=True):
        if _depth(connection) > 0:
            yield connection


def dirty() -> bool:
    """Whether an open transaction of this thread has written: cached reads must bypass."""
    return any(_marked(connection) for connection in _open())


def in_transaction() -> bool:
    """Whether this thread is inside an atomic block (beyond the baseline)."""
    return next(_open(), None) is not None


def unless_rolled_back(write: Callable[[], None]) -> None:
    """Run a cache fill now, or, inside atomic blocks, once they all commit.

    A fill holds rows read inside the transaction; a rollback must take it away too.
    """
    pending = [connection.alias for connection in _open()]
    if not pending:
        write()
        return
    remaining = set(pending)

    def committed(alias: str) -> None:
        remaining.discard(alias)
        if not remaining:
            write()

    for alias in pending:
        transaction.on_commit(functools.partial(committed, alias), using=alias)


ScheduleObserver = Callable[[Callable[[], None], bool], None]
"""``observer(work, deferred)``: invalidation ``work`` was scheduled; ``deferred`` when it
waits for a commit (False: it runs at once)."""

_schedule_observers: tuple[ScheduleObserver, ...] = ()


def add_schedule_observer(observer: ScheduleObserver) -> None:
    """Tell ``observer`` of every invalidation scheduled from now on (the debug panel)."""
    global _schedule_observers
    if observer not in _schedule_observers:
        _schedule_observers = (*_schedule_observers, observer)


def remove_schedule_observer(observer: ScheduleObserver) -> None:
    global _schedule_observers
    _schedule_observers = tuple(each for each in _schedule_observers if each != observer)


def after_commit(work: Callable[[], None], using: str | None = None) -> None:
    """Run invalidation ``work`` when the write's transaction commits (at once outside one).

    ``robust``: the write is already committed, so a failing cache update must not turn
    it into an error response; Django logs the exception, and the entry's lifetime
    bounds the staleness.
    """
    connection = connections[using or DEFAULT_DB_ALIAS]
    at_once = not connection.in_atomic_block or _depth(connection) == 0
    for observer in _schedule_observers:
        observer(work, not at_once)
    if connection.in_atomic_block and _depth(connection) == 0:
        work()  # at the baseline: the test's own transaction counts as committed
        return
    transaction.on_commit(work, using=using, robust=True)


class _Batch:
    """The items one transaction collected for one kind of work, run together on commit."""

    __slots__ = ("items", "run")

    def __init__(self, run: Callable[[list[Any]], None]) -> None:
        self.items: list[Any] = []
        self.run = run

    def __call__(self) -> None:
        items, self.items = self.items, []
        self.run(items)


_BATCHES = "_instcache_batches"


def batch_until_commit(
    kind: str, item: Any, run: Callable[[list[Any]], None], using: str | None = None
) -> None:
    """Add ``item`` to this transaction's batch of ``kind``; ``run`` the batch once it
    commits (at once, alone, outside a transaction).

    A write of N rows in one transaction (a cascading delete, a loop of saves) then costs
    one invalidation run, not N. The batch is registered with ``on_commit`` once; a
    rollback (or a savepoint rollback that drops that registration) drops it, and the
    next write starts a new one. Items of a rolled-back savepoint inside a batch that
    commits are run too: invalidating more than needed is safe.
    """
    connection = connections[using or DEFAULT_DB_ALIAS]
    at_once = not connection.in_atomic_block or _depth(connection) == 0
    for observer in _schedule_observers:
        observer(getattr(item, "run", item), not at_once)
    if at_once:
        run([item])  # autocommit, or the test baseline: committed already
        return
    batches = connection.__dict__.setdefault(_BATCHES, {})
    batch = batches.get(kind)
    if batch is None or not any(entry[1] is batch for entry in connection.run_on_commit):
        batch = batches[kind] = _Batch(run)
        transaction.on_commit(batch, using=using, robust=True)
    batch.items.append(item)


def set_baseline(using: str | None = None) -> None:
    """Treat the atomic blocks open now as the outside world (test isolation)."""
    connection = connections[using or DEFAULT_DB_ALIAS]
    setattr(connection, _BASELINE, len(connection.atomic_blocks))
    _watch(connection)
    if getattr(connection, _MARK, None) is not None:
        setattr(connection, _MARK, None)


def clear_baseline(using: str | None = None) -> None:
    """Undo :func:`set_baseline`."""
    connection = connections[using or DEFAULT_DB_ALIAS]
    if hasattr(connection, _BASELINE):
        delattr(connection, _BASELINE)
