"""Deletions Django collects (``Model.delete()``, ``on_delete=CASCADE``) in one batch.

``pre_delete`` comes for every row of a deletion before any is deleted. The receivers
hold the rows (:func:`~drf_instcache.invalidation.bulk.state.collect_delete`) and, just
before the deletion's first statement that changes rows, this reads what they all name
while they are as they were (:func:`~drf_instcache.invalidation.bulk.operation.prepare_delete`,
one batch per model) and schedules the same after-commit work as a bulk ``delete()``.
So deleting a Question with 1,000 Choices costs the queries of one with 10.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Model

from drf_instcache.core.relations import m2m_through
from drf_instcache.invalidation.bulk import state
from drf_instcache.invalidation.bulk.operation import list_query_tables, prepare_delete


def invalidate_collected(using: str, rows: dict[type[Model], list[Model]]) -> None:
    """Prepare and schedule the invalidation of a deletion's rows (``{model: instances}``)."""
    operation = prepare_delete(rows, using)
    operation.tables = list_query_tables(touched_by_deleting(rows))
    operation.schedule()


def touched_by_deleting(models: Iterable[type[Model]]) -> list[type[Model]]:
    """The models whose tables deleting rows of ``models`` may change: their own, the
    many-to-many through tables Django empties without a signal, and the models pointing
    at them (``SET_NULL`` and the like). More than needed is safe: a list query reread."""
    touched: dict[type[Model], None] = {}
    for model in models:
        touched[model] = None
        for field in model._meta.get_fields(include_hidden=True):
            if field.many_to_many:
                touched[m2m_through(field)] = None
            elif field.one_to_many and field.related_model is not None:
                touched[field.related_model] = None
    return list(touched)


def install() -> None:
    """Batch collected deletions (the app config calls this)."""
    state.set_flusher(invalidate_collected)
