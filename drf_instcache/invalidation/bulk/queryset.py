"""The opt-in: a QuerySet whose bulk writes invalidate what they change.

A model opts in once, by giving its default manager :class:`InstcacheQuerySetMixin`::

    class Question(models.Model):
        objects = InstcacheManager()                 # or InstcacheQuerySet.as_manager()

    class BookQuerySet(InstcacheQuerySetMixin, models.QuerySet): ...   # an existing one
    objects = BookManager.from_queryset(BookQuerySet)()

or, for a model you cannot edit (``auth.User``), with :func:`install`. Its ``update()``,
``delete()``, ``bulk_update()`` and ``bulk_create()`` then collect the rows they touch
and run an :class:`~drf_instcache.invalidation.bulk.operation.Operation` after the commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.db import connections, transaction
from django.db.models import Manager, Model, QuerySet
from django.db.models.deletion import Collector

from drf_instcache.invalidation.bulk import state
from drf_instcache.invalidation.bulk.instance_jobs import concrete
from drf_instcache.invalidation.bulk.operation import (
    list_query_tables,
    prepare_change,
    prepare_create,
    prepare_delete,
    relevant,
)

_inside: ContextVar[bool] = ContextVar("drf_instcache_bulk_inside", default=False)
"""True while a bulk operation runs: the ``update()`` Django's ``bulk_update()`` makes
(and any nested bulk call) is then part of the outer operation, not a second one."""


@contextmanager
def _operation() -> Iterator[None]:
    token = _inside.set(True)
    try:
        yield
    finally:
        _inside.reset(token)


def _plain(model: type[Model]) -> bool:
    """Inside another bulk operation, or a model nothing cached depends on."""
    return _inside.get() or not relevant(model)


class InstcacheQuerySetMixin:
    """Mix into a ``QuerySet`` class so its bulk writes invalidate what they change.

    Costs, on top of the write itself (K rows, per connected cache class):

    * ``update()``: one ``values_list("pk")`` query for the rows, and the update is
      then restricted to them (``pk__in``); the cache class's ``loader_many`` for the
      old rows before the write, and per cascade level after the commit; one owner
      query per rendered dependency (twice when the update changes its link column).
    * ``bulk_update()``: the same, without the pk query (the objects carry their pks).
    * ``delete()``: Django's own collection of the rows (it loads them anyway while
      invalidation receivers are connected); ``loader_many`` once before the delete;
      one owner query per rendered dependency; no per-row receiver work.
    * ``bulk_create()``: the inserted rows loaded once (``loader_many``) for their
      invalidator; after the commit, the related entries they name are refreshed
      (``loader_many``) and one owner query runs per rendered dependency.

    Cache round trips after the commit: one delete for the dropped keys, and per
    refreshed entry the round trips of :meth:`BaseCache.update_instance`.
    """

    model: type[Model]
    db: str

    def update(self, **kwargs: Any) -> int:
        if _plain(self.model):
            return super().update(**kwargs)  # type: ignore[misc]
        with _operation():
            using = self.db
            pks = list(self.values_list("pk", flat=True).order_by())  # type: ignore[attr-defined]
            if not pks:
                return 0
            operation = prepare_change(self.model, pks, kwargs, using)
            count = _update_rows(self, pks, kwargs, using)
            operation.schedule()
            return count

    update.alters_data = True  # type: ignore[attr-defined]

    def bulk_update(self, objs: Iterable[Model], fields: Sequence[str], **kwargs: Any) -> int:
        if _plain(self.model):
            return super().bulk_update(objs, fields, **kwargs)  # type: ignore[misc]
        objs = list(objs)
        with _operation():
            pks = list(dict.fromkeys(obj.pk for obj in objs if obj.pk is not None))
            operation = prepare_change(self.model, pks, fields, self.db)
            count = super().bulk_update(objs, fields, **kwargs)  # type: ignore[misc]
            operation.schedule()
            return count

    bulk_update.alters_data = True  # type: ignore[attr-defined]

    def bulk_create(self, objs: Iterable[Model], *args: Any, **kwargs: Any) -> list[Model]:
        if _plain(self.model):
            return super().bulk_create(objs, *args, **kwargs)  # type: ignore[misc]
        with _operation():
            created = super().bulk_create(objs, *args, **kwargs)  # type: ignore[misc]
            if kwargs.get("update_conflicts"):
                # Some rows were updated in place: refresh them as an update would.
                pks = [obj.pk for obj in created if obj.pk is not None]
                operation = prepare_change(self.model, pks, None, self.db)
            else:
                operation = prepare_create(self.model, created, self.db)
            operation.schedule()
            return created

    bulk_create.alters_data = True  # type: ignore[attr-defined]

    def delete(self) -> tuple[int, dict[str, int]]:
        if _plain(self.model):
            return super().delete()  # type: ignore[misc]
        with _operation():
            return _delete_rows(self)  # type: ignore[arg-type]

    delete.alters_data = True  # type: ignore[attr-defined]
    delete.queryset_only = True  # type: ignore[attr-defined]


def _update_rows(queryset: Any, pks: list[Any], kwargs: dict[str, Any], using: str) -> int:
    """Update exactly the rows collected (so exactly those are invalidated).

    Runs inside :func:`_operation`, so these ``update()`` calls are Django's own.
    """
    limit = connections[using].features.max_query_params or len(pks)
    if len(pks) <= limit:
        return int(queryset.filter(pk__in=pks).update(**kwargs))
    count = 0
    with transaction.atomic(using=using, savepoint=False):
        for start in range(0, len(pks), limit):
            count += int(queryset.filter(pk__in=pks[start : start + limit]).update(**kwargs))
    return count


def _delete_rows(queryset: QuerySet) -> tuple[int, dict[str, int]]:
    """``QuerySet.delete()`` (Django 5.2's steps), the collected rows invalidated in one batch."""
    queryset._not_support_combined_queries("delete")  # type: ignore[attr-defined]
    if queryset.query.is_sliced:
        raise TypeError("Cannot use 'limit' or 'offset' with delete().")
    if queryset.query.distinct_fields:
        raise TypeError("Cannot call delete() after .distinct(*fields).")
    if queryset._fields is not None:  # type: ignore[attr-defined]
        raise TypeError("Cannot call delete() after .values() or .values_list()")
    del_query = queryset._chain()  # type: ignore[attr-defined]
    del_query._for_write = True
    del_query.query.select_for_update = False
    del_query.query.select_related = False
    del_query.query.clear_ordering(force=True)
    collector = Collector(using=del_query.db, origin=queryset)
    collector.collect(del_query)
    rows = {model: list(instances) for model, instances in collector.data.items()}
    operation = prepare_delete(rows, del_query.db)
    touched = [*rows, *(qs.model for qs in collector.fast_deletes)]
    touched += [field.model for field, _value in collector.field_updates]
    operation.tables = list_query_tables(touched)
    handled = {
        concrete(model): frozenset(obj.pk for obj in instances) for model, instances in rows.items()
    }
    with state.handling(handled):
        result = collector.delete()
    queryset._result_cache = None  # type: ignore[attr-defined]
    operation.schedule()
    return result


class InstcacheQuerySet(InstcacheQuerySetMixin, QuerySet):  # type: ignore[misc]
    """A ``QuerySet`` whose bulk writes invalidate: ``objects = InstcacheQuerySet.as_manager()``."""


class InstcacheManager(Manager.from_queryset(InstcacheQuerySet)):  # type: ignore[misc]
    """Querysets are :class:`InstcacheQuerySet`: ``objects = InstcacheManager()``."""


def install(model: type[Model]) -> None:
    """Give a model you cannot edit (``auth.User``) bulk writes that invalidate.

    Every manager of ``model`` gets a subclass of its own class whose querysets mix in
    :class:`InstcacheQuerySetMixin` (related managers, built from the default manager's
    class, follow). Call it once, from an ``AppConfig.ready()``. Idempotent.
    """
    # The declared managers too (on the model and the bases it inherits them from, such
    # as AbstractUser): ``_meta.managers`` holds copies of them, made again whenever the
    # app registry's caches are cleared (a model registered later, e.g. in tests).
    declared = [
        manager
        for base in model.__mro__
        if hasattr(base, "_meta")
        for manager in base._meta.local_managers
    ]
    managers = {
        id(each): each for each in (*declared, *model._meta.managers, model._default_manager)
    }
    for manager in managers.values():
        current: Any = manager._queryset_class  # type: ignore[attr-defined]
        if issubclass(current, InstcacheQuerySetMixin):
            continue
        queryset_class = type(
            f"Instcache{current.__name__}",
            (InstcacheQuerySetMixin, current),
            {"__module__": __name__},
        )
        manager_class = type(
            f"Instcache{type(manager).__name__}",
            (type(manager),),
            {"_queryset_class": queryset_class, "__module__": __name__},
        )
        manager.__class__ = manager_class


def has_mixin(model: type[Model]) -> bool:
    """Whether ``model``'s default manager makes invalidating querysets."""
    current: Any = model._default_manager._queryset_class  # type: ignore[attr-defined]
    return issubclass(current, InstcacheQuerySetMixin)
