"""Which rows a bulk delete is invalidating in one batch right now.

``QuerySet.delete()`` sends ``pre_delete``/``post_delete`` for every row it collects
while invalidation receivers are connected. When the delete goes through
:class:`~drf_instcache.invalidation.bulk.queryset.InstcacheQuerySetMixin`, the rows are
invalidated in one batch instead, so the per-row receivers skip exactly those rows
(other receivers, and other rows deleted meanwhile, are untouched). A module of its own
so the receivers can import it without an import circle.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model

from drf_instcache.core import transactions

logger = logging.getLogger(__name__)

_handled: ContextVar[Mapping[type[Model], frozenset[Any]] | None] = ContextVar(
    "drf_instcache_bulk_handled", default=None
)


@contextmanager
def handling(rows: Mapping[type[Model], frozenset[Any]]) -> Iterator[None]:
    """Within the block, :func:`handled` is true for these ``{concrete model: pks}``."""
    token = _handled.set(rows)
    try:
        yield
    finally:
        _handled.reset(token)


def handled(instance: Any) -> bool:
    """Whether a bulk operation invalidates ``instance`` itself (its receivers skip it)."""
    if instance is None:
        return False
    if instance.pk is not None and instance.__dict__.get(_COLLECTED) == instance.pk:
        return True  # deleted with the other rows of its deletion, in one batch
    rows = _handled.get()
    if not rows:
        return False
    pks = rows.get(type(instance)._meta.concrete_model)
    return pks is not None and instance.pk in pks


# -- deletions Django collects (Model.delete(), cascades) ---------------------------------
Flush = Callable[[str, dict[type[Model], list[Model]]], None]

_COLLECTED = "_drf_instcache_collected"
"""On an instance being deleted with others: its pk then (so a later save starts anew)."""
_PENDING = "_drf_instcache_pending_deletes"
_flusher: list[Flush] = []


def set_flusher(flush: Flush) -> None:
    """Install what invalidates a deletion's collected rows in one batch."""
    _flusher[:] = [flush]


def collect_delete(instance: Model, using: str | None) -> bool:
    """Hold ``instance`` (at ``pre_delete``) to be invalidated with the other rows of its
    deletion, just before the first of them is deleted; True when it is held.

    Django sends ``pre_delete`` for every collected row (a cascade's too) before deleting
    any, inside one atomic block: one read of what they all name replaces one per row.
    """
    if handled(instance):
        return True
    if not _flusher or instance.pk is None:
        return False
    connection = connections[using or DEFAULT_DB_ALIAS]
    if not connection.in_atomic_block or not transactions.watching(connection):
        return False
    pending = connection.__dict__.get(_PENDING)
    if pending is None:
        pending = connection.__dict__[_PENDING] = {}
        transactions.before_next_write(connection, lambda: _flush(connection.alias))
    pending.setdefault(type(instance)._meta.concrete_model, []).append(instance)
    instance.__dict__[_COLLECTED] = instance.pk
    return True


def _flush(alias: str) -> None:
    rows = connections[alias].__dict__.pop(_PENDING, None)
    if not rows:
        return
    try:
        _flusher[0](alias, rows)
    except Exception:
        logger.exception("drf-instcache: invalidating %d deleted row(s) failed", len(rows))
        for instances in rows.values():  # let the per-row receivers do what they can
            for instance in instances:
                instance.__dict__.pop(_COLLECTED, None)


def flush_collected(using: str | None) -> None:
    """Invalidate held rows now (``post_delete``'s safety net: normally done already)."""
    _flush(using or DEFAULT_DB_ALIAS)
