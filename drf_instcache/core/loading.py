"""Batch loaders: rows by primary key, with the pks of their to-many relations attached.

:func:`load_many_with_related_pks` is what a cache class's ``loader_many`` usually calls;
:func:`load_misses` is how a read loads its misses (in one batch when the model allows).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from django.core.exceptions import FieldDoesNotExist, ObjectDoesNotExist
from django.db import connections, models
from django.db.models import F, Lookup

__all__ = ["filter_pks", "load_many_with_related_pks", "load_misses", "load_one"]


class _AnyOf(Lookup):
    """``column = ANY(%s)``: the values travel as ONE array parameter (PostgreSQL).

    ``pk__in`` of a page of 100 sends a hundred literals that Django prepares one by one
    and PostgreSQL parses and plans one by one; a cold page pays that twice (its rows,
    and their relations' pks). The array form answers the same rows ~0.3 ms sooner.
    """

    lookup_name = "instcache_any"
    prepare_rhs = False

    def get_prep_lookup(self) -> Any:
        return list(self.rhs)

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        lhs_sql, lhs_params = compiler.compile(self.lhs)
        field = self.lhs.output_field
        values = [field.get_db_prep_value(value, connection, prepared=False) for value in self.rhs]
        return f"{lhs_sql} = ANY(%s)", (*lhs_params, values)


def filter_pks(queryset: models.QuerySet, pks: Sequence[Any]) -> models.QuerySet:
    """``queryset.filter(pk__in=pks)``, unsorted: as one array parameter on PostgreSQL,
    and as ``pk = %s`` for one pk (the query ``get()`` sends).

    Callers match the rows by pk, so the queryset's ordering is dropped (as ``get()``
    drops it): sorting a cold page's rows, and compiling the ORDER BY, cost a retrieve
    ~0.15 ms for nothing. ``DISTINCT ON`` needs its ORDER BY, so it keeps it.
    """
    if not queryset.query.distinct_fields:
        queryset = queryset.order_by()
    if len(pks) == 1:
        return queryset.filter(pk=pks[0])
    if pks and connections[queryset.db].vendor == "postgresql":
        return queryset.filter(_AnyOf(F("pk"), pks))
    return queryset.filter(pk__in=pks)


class ModelFunctions(Protocol):
    """What loading asks of a cache class (:class:`~drf_instcache.cache.BaseCache`)."""

    def model_function(
        self, model_name: str, version: str, func_name: str
    ) -> Callable[..., Any] | None: ...

    def key_for(self, version: str, model_name: str, pk: Any) -> str: ...


def load_misses(
    cache: ModelFunctions, model_name: str, version: str, entries: Sequence[tuple[str, Any, Any]]
) -> dict[str, Any]:
    """Load ``(key, pk, given_obj)`` entries: in one batch when the model allows."""
    result = {key: obj for key, _, obj in entries if obj is not None}
    needed = [(key, pk) for key, pk, obj in entries if obj is None]
    if not needed:
        return result
    loader_many = cache.model_function(model_name, version, "loader_many")
    if loader_many is not None:
        loaded = loader_many([pk for _, pk in needed]) or {}
        # Match by key, not pk: a caller's "5" and the database's 5 are the same row.
        by_key = {cache.key_for(version, model_name, pk): obj for pk, obj in loaded.items()}
        for key, _ in needed:
            result[key] = by_key.get(key)
        return result
    loader = cache.model_function(model_name, version, "loader")
    for key, pk in needed:
        result[key] = load_one(loader, pk)
    return result


def load_one(loader: Callable[[Any], Any] | None, pk: Any) -> Any:
    """Call a per-pk loader; a loader that raises DoesNotExist means "gone"."""
    if loader is None:
        return None
    try:
        return loader(pk)
    except ObjectDoesNotExist:
        return None


def _relation(model: type[models.Model], name: str) -> Any:
    """Find a relation by field name, related query name or reverse accessor name."""
    for field in model._meta.get_fields():
        if not field.is_relation:
            continue
        accessor = field.get_accessor_name() if hasattr(field, "get_accessor_name") else None
        if name in (field.name, accessor):
            return field
    relations = sorted(
        (field.get_accessor_name() if hasattr(field, "get_accessor_name") else field.name) or ""
        for field in model._meta.get_fields()
        if field.is_relation
    )
    raise FieldDoesNotExist(
        f"{model.__name__} has no relation {name!r}; relations: {', '.join(relations)}"
    )


def load_many_with_related_pks(
    queryset: models.QuerySet | type[models.Model],
    pks: Iterable[Any],
    related_names: Iterable[str] = (),
) -> dict[Any, models.Model]:
    """Load rows by primary key, with the pks of their to-many relations attached.

    One query loads the rows (as ``in_bulk`` does); then, for each name in ``related_names``,
    ONE query reads the (owner pk, related pk) pairs of every row, stored on each
    instance as ``_<name>_pks`` (sorted). Serializers that read those attributes, as
    the usage guide's ``add_related_pks`` functions do, then cost no query per row: a
    cold list of any length costs ``1 + len(related_names)`` queries.

    Returns ``{pk: instance}`` for the rows that exist.
    """
    if isinstance(queryset, type) and issubclass(queryset, models.Model):
        queryset = queryset._default_manager.all()
    wanted = list(dict.fromkeys(pks))
    if not wanted:
        return {}
    if connections[queryset.db].vendor == "postgresql":
        objects = {obj.pk: obj for obj in filter_pks(queryset, wanted)}
    else:
        objects = queryset.in_bulk(wanted)  # batched under SQLite's parameter limit
    if not objects:
        return {}
    model = queryset.model
    for name in related_names:
        relation = _relation(model, name)
        related: dict[Any, list[Any]] = {pk: [] for pk in objects}
        pairs = filter_pks(
            model._base_manager.using(queryset.db).order_by(), list(objects)
        ).values_list("pk", relation.name)
        for owner_pk, related_pk in pairs:
            if related_pk is not None:
                related[owner_pk].append(related_pk)
        attribute = f"_{name}_pks"
        for pk, obj in objects.items():
            setattr(obj, attribute, sorted(related[pk]))
    return objects
