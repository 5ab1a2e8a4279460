"""Which rows a bulk delete is invalidating in one batch right now.

``QuerySet.delete()`` sends ``pre_delete``/``post_delete`` for every row it collects
while invalidation receivers are connected. When the delete goes through
:class:`~drf_instcache.invalidation.bulk.queryset.InstcacheQuerySetMixin`, the rows are
invalidated in one batch instead, so the per-row receivers skip exactly those rows
(other receivers, and other rows deleted meanwhile, are untouched). A module of its own
so the receivers can import it without an import circle.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.db.models import Model

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
    rows = _handled.get()
    if not rows or instance is None:
        return False
    pks = rows.get(type(instance)._meta.concrete_model)
    return pks is not None and instance.pk in pks
