"""Look-alikes of Django's Model and QuerySet, backed by the instance cache.

DRF serializers only read attributes, follow relations to primary keys and iterate
querysets, so a read endpoint does not need real model instances: these classes give
serializers just enough of the Model/QuerySet interface, with the data coming from
:meth:`drf_instcache.cache.BaseCache.get_instances`. Only primary keys come from the
database, so filtering, ordering and pagination keep their exact Django semantics.

This module defines no Django models; it is ``models.py`` to mirror the original
drf-cached-instances layout that the user guide imports from.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models
from django.db.models import QuerySet

logger = logging.getLogger(__name__)


class InstanceCache(Protocol):
    """What the look-alikes ask of a cache class (:class:`~drf_instcache.cache.BaseCache`)."""

    def get_instances(
        self, object_specs: Iterable[tuple[str, Any, Any]], version: str | None = None
    ) -> dict[tuple[str, Any], tuple[dict[str, Any], str, Any]]: ...


_loaded_for: set[tuple[type, str]] = set()
"""(model, attribute) pairs already warned about as read from the database."""

_PK_ALIASES = ("pk", "pk__exact")
_MAX_GET_RESULTS = 21  # as Django's QuerySet.get: enough to say "more than 20"


def _pk_names(model: type[models.Model]) -> set[str]:
    """Attribute names under which a model exposes its primary key."""
    pk_field = model._meta.pk
    return {"pk", pk_field.name, pk_field.attname}


class PkOnlyModel:
    """A related object of which only the model and primary key are known.

    Serializer fields such as ``PrimaryKeyRelatedField`` need nothing more, so a
    relation stored as a primary key in the cache costs no query to render.
    """

    __slots__ = ("cache", "model", "pk")

    def __init__(self, cache: InstanceCache | None, model: type[models.Model], pk: Any) -> None:
        self.cache = cache
        self.model = model
        self.pk = pk

    def __getattr__(self, name: str) -> Any:
        # ``id`` (or whatever the pk is called) is the only other attribute we know.
        if name in _pk_names(object.__getattribute__(self, "model")):
            return object.__getattribute__(self, "pk")
        raise AttributeError(
            f"PkOnlyModel of {self.model.__name__} {self.pk!r} knows only its primary key, "
            f"not {name!r}"
        )

    def serializable_value(self, field_name: str) -> Any:
        """Like ``Model.serializable_value``: only the primary key is available."""
        return getattr(self, field_name)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PkOnlyModel | CachedModel):
            return other.model is self.model and other.pk == self.pk
        if isinstance(other, models.Model):
            return other._meta.concrete_model is self.model._meta.concrete_model and (
                other.pk == self.pk
            )
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.model, self.pk))

    def __repr__(self) -> str:
        return f"<PkOnlyModel {self.model.__name__} pk={self.pk!r}>"


class PkOnlyQueryset:
    """A to-many relation of which only the primary keys are known.

    Iterating yields :class:`PkOnlyModel` objects; ``values_list('pk', flat=True)``
    returns the keys. That is what DRF's many-related fields use.
    """

    def __init__(
        self, cache: InstanceCache | None, model: type[models.Model], pks: Sequence
    ) -> None:
        self.cache = cache
        self.model = model
        self.pks = list(pks)

    def all(self) -> PkOnlyQueryset:
        """The relation itself: there is nothing to re-query."""
        return self

    def __iter__(self) -> Iterator[PkOnlyModel]:
        return (PkOnlyModel(self.cache, self.model, pk) for pk in self.pks)

    def __len__(self) -> int:
        return len(self.pks)

    def count(self) -> int:
        """The number of related objects."""
        return len(self.pks)

    def exists(self) -> bool:
        """True when there is at least one related object."""
        return bool(self.pks)

    def __getitem__(self, index: int | slice) -> PkOnlyModel | PkOnlyQueryset:
        if isinstance(index, slice):
            return PkOnlyQueryset(self.cache, self.model, self.pks[index])
        return PkOnlyModel(self.cache, self.model, self.pks[index])

    def values_list(self, *fields: str, flat: bool = False) -> list:
        """Only ``values_list('pk', flat=True)`` (or the pk field's name) is possible."""
        if not (flat and len(fields) == 1 and fields[0] in _pk_names(self.model)):
            raise TypeError(
                f"a PkOnlyQueryset of {self.model.__name__} knows only primary keys: "
                f"use values_list('pk', flat=True), not values_list{fields!r} flat={flat}"
            )
        return list(self.pks)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PkOnlyQueryset):
            return other.model is self.model and other.pks == self.pks
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, like a list

    def __repr__(self) -> str:
        return f"<PkOnlyQueryset {self.model.__name__} pks={self.pks!r}>"


class CachedModel:
    """A model instance rebuilt from a cached representation.

    Attribute access reads the cached data; related objects are :class:`PkOnlyModel`
    and :class:`PkOnlyQueryset`. It is read-only on purpose: writes go through the
    real queryset.
    """

    def __init__(self, model: type[models.Model], data: dict[str, Any]) -> None:
        self.__dict__["_model"] = model
        self.__dict__["_data"] = data

    @property
    def model(self) -> type[models.Model]:
        """The Django model class this instance stands for."""
        return self._model

    @property
    def _meta(self) -> Any:
        return self._model._meta

    @property
    def pk(self) -> Any:
        """The primary key, whichever name the cached data stores it under."""
        pk = self._stored_pk()
        if pk is None:
            raise AttributeError(f"cached {self._model.__name__} data has no primary key")
        return pk

    def _stored_pk(self) -> Any:
        data = self.__dict__["_data"]
        meta = self.__dict__["_model"]._meta
        for name in ("pk", meta.pk.attname, meta.pk.name):
            if name in data:
                return data[name]
        return None

    def __getattr__(self, name: str) -> Any:
        data = self.__dict__.get("_data")
        if data is not None:
            if name in data:
                return data[name]
            model = self.__dict__["_model"]
            if name in _pk_names(model):
                return self.pk
            # A foreign key's ``<name>_id`` is the pk of the cached related object.
            if name.endswith("_id") and isinstance(data.get(name[:-3]), PkOnlyModel):
                return data[name[:-3]].pk
            if not name.startswith("_") and hasattr(model, name) and self._stored_pk() is not None:
                return getattr(self._instance(name), name)
        model_name = self.__dict__.get("_model", type(self)).__name__
        raise AttributeError(f"cached {model_name} has no attribute {name!r}")

    def _instance(self, wanted: str) -> models.Model:
        """The real row, for an attribute of the model the cache class does not store.

        Code the cache does not know (a ``get_object()`` override, a permission, a
        serializer field) may read any attribute of the model; answering from the
        database costs a query but never changes the answer. Logged once per attribute.
        """
        model = self._model
        if (model, wanted) not in _loaded_for:
            _loaded_for.add((model, wanted))
            logger.warning(
                "drf-instcache: %s.%s is not in the cached representation; the row is "
                "loaded from the database to read it (add it to the cache serializer).",
                model.__name__,
                wanted,
            )
        instance = self.__dict__.get("_real")
        if instance is None:
            try:
                instance = model._base_manager.get(pk=self.pk)
            except model.DoesNotExist:
                raise AttributeError(f"cached {model.__name__} {self.pk!r} is gone") from None
            self.__dict__["_real"] = instance
        return instance

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(
            f"cached {self._model.__name__} instances are read-only (setting {name!r})"
        )

    def serializable_value(self, field_name: str) -> Any:
        """Like ``Model.serializable_value``: a relation gives its related primary key.

        DRF's ``PrimaryKeyRelatedField`` calls this for its pk-only optimisation.
        """
        try:
            field = self._model._meta.get_field(field_name)
        except FieldDoesNotExist:
            return getattr(self, field_name)
        attname = getattr(field, "attname", field_name)
        if attname in self._data:
            return self._data[attname]
        value = getattr(self, field_name)
        return value.pk if isinstance(value, PkOnlyModel) else value

    def __eq__(self, other: object) -> bool:
        if isinstance(other, CachedModel | PkOnlyModel):
            return other.model is self.model and other.pk == self.pk
        if isinstance(other, models.Model):
            return other._meta.concrete_model is self._model._meta.concrete_model and (
                other.pk == self.pk
            )
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self._model, self.pk))

    def __repr__(self) -> str:
        return f"<CachedModel {self._model.__name__} {self._data!r}>"


class CachedQueryset:
    """A QuerySet look-alike: primary keys from the database, instances from the cache.

    It wraps a real queryset, so ``filter``/``exclude``/``order_by``/``distinct`` keep
    Django's semantics (and filter backends work unchanged); only ``values_list('pk')``
    is ever evaluated against the database, then every instance comes from one
    :meth:`~drf_instcache.cache.BaseCache.get_instances` call. Primary keys are loaded
    lazily and once.
    """

    def __init__(
        self,
        cache: InstanceCache,
        queryset: QuerySet,
        primary_keys: Sequence | None = None,
        version: str | None = None,
    ) -> None:
        if queryset is None or not hasattr(queryset, "model"):
            raise TypeError(f"CachedQueryset needs a real QuerySet, not {queryset!r}")
        self.cache = cache
        self.queryset = queryset
        self.version = version
        self._fixed_pks = primary_keys is not None
        self._primary_keys: list | None = None if primary_keys is None else list(primary_keys)
        self._result_cache: list[CachedModel] | None = None

    # -- passthrough --------------------------------------------------------------------
    @property
    def model(self) -> type[models.Model]:
        """The model of the wrapped queryset."""
        return self.queryset.model

    @property
    def ordered(self) -> bool:
        """Whether the wrapped queryset has a defined order (the paginator asks)."""
        return self.queryset.ordered

    @property
    def query(self) -> Any:
        """The wrapped queryset's query, for code such as ``Exists(...)`` that reads it."""
        return self.queryset.query

    @property
    def db(self) -> str:
        """The database alias the wrapped queryset reads from."""
        return self.queryset.db

    @property
    def model_name(self) -> str:
        """The model name the cache class knows this model by."""
        return self.model.__name__

    def _derive(self, queryset: QuerySet, primary_keys: Sequence | None = None) -> CachedQueryset:
        return CachedQueryset(self.cache, queryset, primary_keys, version=self.version)

    def _refuse_fixed(self, operation: str) -> None:
        if self._fixed_pks:
            raise TypeError(
                f"cannot {operation}() a CachedQueryset built from a fixed list of primary "
                "keys; apply it to the queryset before slicing or listing keys"
            )

    # -- chaining -----------------------------------------------------------------------
    def all(self) -> CachedQueryset:
        """A fresh copy that will query its primary keys again."""
        return self._derive(self.queryset.all(), self._primary_keys if self._fixed_pks else None)

    def none(self) -> CachedQueryset:
        """An empty queryset: no query, no cache access."""
        return self._derive(self.queryset.none(), [])

    def filter(self, *args: Any, **kwargs: Any) -> CachedQueryset:
        """Filter the wrapped queryset."""
        self._refuse_fixed("filter")
        return self._derive(self.queryset.filter(*args, **kwargs))

    def exclude(self, *args: Any, **kwargs: Any) -> CachedQueryset:
        """Exclude from the wrapped queryset."""
        self._refuse_fixed("exclude")
        return self._derive(self.queryset.exclude(*args, **kwargs))

    def order_by(self, *field_names: str) -> CachedQueryset:
        """Reorder the wrapped queryset."""
        self._refuse_fixed("order_by")
        return self._derive(self.queryset.order_by(*field_names))

    def distinct(self, *field_names: str) -> CachedQueryset:
        """Make the wrapped queryset distinct."""
        self._refuse_fixed("distinct")
        return self._derive(self.queryset.distinct(*field_names))

    # -- primary keys -------------------------------------------------------------------
    @property
    def pks(self) -> list:
        """The primary keys, in queryset order, queried once on first use."""
        if self._primary_keys is None:
            self._primary_keys = list(self.queryset.values_list("pk", flat=True))
        return self._primary_keys

    def values_list(self, *fields: str, flat: bool = False) -> Any:
        """``values_list('pk', flat=True)`` gives the primary keys; anything else is
        answered by the wrapped queryset."""
        if flat and len(fields) == 1 and fields[0] in _pk_names(self.model):
            return list(self.pks)
        self._refuse_fixed("values_list")
        return self.queryset.values_list(*fields, flat=flat)

    # -- evaluation ---------------------------------------------------------------------
    def _instances(self, pks: Sequence) -> list[CachedModel]:
        """CachedModels for ``pks`` in order, skipping rows that no longer exist."""
        if not pks:
            return []
        model_name = self.model_name
        found = self.cache.get_instances(
            [(model_name, pk, None) for pk in pks], version=self.version
        )
        result = []
        for pk in pks:
            entry = found.get((model_name, pk))
            if entry is not None:
                result.append(CachedModel(self.model, entry[0]))
        return result

    def _fetch_all(self) -> list[CachedModel]:
        if self._result_cache is None:
            self._result_cache = self._instances(self.pks)
        return self._result_cache

    def __iter__(self) -> Iterator[CachedModel]:
        return iter(self._fetch_all())

    def __len__(self) -> int:
        return len(self.pks)

    def __bool__(self) -> bool:
        return bool(self.pks)

    def count(self) -> int:
        """The number of rows: counted by the database unless keys are already known."""
        if self._primary_keys is not None:
            return len(self._primary_keys)
        return self.queryset.count()

    def exists(self) -> bool:
        """Whether there is any row: asked of the database unless keys are known."""
        if self._primary_keys is not None:
            return bool(self._primary_keys)
        return self.queryset.exists()

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            if self._primary_keys is not None:
                return self._derive(self.queryset, self._primary_keys[index])
            # Lazy, like a QuerySet: the sliced queryset's keys are queried on use.
            return self._derive(self.queryset[index])
        if not isinstance(index, int):
            raise TypeError(f"CachedQueryset indices must be integers or slices, not {index!r}")
        if self._primary_keys is not None:
            pk = self._primary_keys[index]
        else:
            pk = self.queryset.values_list("pk", flat=True)[index]
        instances = self._instances([pk])
        if not instances:
            raise IndexError(f"{self.model.__name__} {pk!r} no longer exists")
        return instances[0]

    def get(self, *args: Any, **kwargs: Any) -> CachedModel:
        """Return the one matching instance, as ``QuerySet.get`` does.

        A lookup by primary key alone on an unfiltered queryset is served from the
        cache without any query; anything else asks the database for the matching
        primary keys first. Raises ``DoesNotExist`` / ``MultipleObjectsReturned``, and for
        a malformed key what the real queryset raises (DRF's ``get_object`` makes a bare
        404 of it).
        """
        model = self.model
        pk_lookup = self._pk_lookup(args, kwargs)
        if pk_lookup is not _NO_PK_LOOKUP:
            try:
                pk = model._meta.pk.to_python(pk_lookup)
            except (ValidationError, ValueError, TypeError):
                self.queryset.filter(pk=pk_lookup)  # raises what the real get() raises
                raise model.DoesNotExist(
                    f"{model.__name__} matching query does not exist (malformed primary key "
                    f"{pk_lookup!r})"
                ) from None
            if self._fixed_pks and pk not in self._primary_keys:  # type: ignore[operator]
                pks: list = []
            else:
                pks = [pk]
        else:
            pks = list(
                self.queryset.filter(*args, **kwargs).values_list("pk", flat=True)[
                    :_MAX_GET_RESULTS
                ]
            )
            if self._fixed_pks:
                pks = [pk for pk in pks if pk in self._primary_keys]  # type: ignore[operator]
        if len(pks) > 1:
            more = "more than 20" if len(pks) == _MAX_GET_RESULTS else str(len(pks))
            raise model.MultipleObjectsReturned(
                f"get() returned more than one {model.__name__} -- it returned {more}!"
            )
        instances = self._instances(pks)
        if not instances:
            raise model.DoesNotExist(f"{model.__name__} matching query does not exist.")
        return instances[0]

    def _pk_lookup(self, args: tuple, kwargs: dict[str, Any]) -> Any:
        """The looked-up pk when ``get`` can skip the database, else ``_NO_PK_LOOKUP``."""
        if args or len(kwargs) != 1:
            return _NO_PK_LOOKUP
        ((name, value),) = kwargs.items()
        pk_field = self.model._meta.pk
        names = {*_PK_ALIASES, pk_field.name, pk_field.attname, f"{pk_field.name}__exact"}
        if (
            name not in names
            or isinstance(value, models.Model)
            or hasattr(value, "resolve_expression")
        ):
            return _NO_PK_LOOKUP
        query = self.queryset.query
        if query.where or query.is_sliced or query.combinator:
            return _NO_PK_LOOKUP
        return value

    def __repr__(self) -> str:
        state = repr(self._primary_keys) if self._primary_keys is not None else "pks not loaded"
        return f"<CachedQueryset {self.model.__name__} {state}>"


_NO_PK_LOOKUP = object()
