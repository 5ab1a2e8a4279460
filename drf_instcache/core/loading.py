"""Batch loaders: rows by primary key, with the pks of their to-many relations attached.

:func:`load_many_with_related_pks` is what a cache class's ``loader_many`` usually calls;
:func:`load_misses` is how a read loads its misses (in one batch when the model allows).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from django.core.exceptions import FieldDoesNotExist, ObjectDoesNotExist
from django.db import models

__all__ = ["load_many_with_related_pks", "load_misses", "load_one"]


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

    One query loads the rows (``in_bulk``); then, for each name in ``related_names``,
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
    objects = queryset.in_bulk(wanted)
    if not objects:
        return {}
    model = queryset.model
    for name in related_names:
        relation = _relation(model, name)
        related: dict[Any, list[Any]] = {pk: [] for pk in objects}
        pairs = (
            model._base_manager.using(queryset.db)
            .filter(pk__in=list(objects))
            .values_list("pk", relation.name)
            .order_by()
        )
        for owner_pk, related_pk in pairs:
            if related_pk is not None:
                related[owner_pk].append(related_pk)
        attribute = f"_{name}_pks"
        for pk, obj in objects.items():
            setattr(obj, attribute, sorted(related[pk]))
    return objects
