"""The instance-cache work of a bulk write: what the rows name, and the refresh after commit.

For each cache class connected with :func:`drf_instcache.signals.connect` that caches the
model, the invalidator runs on the rows *as they were* (before an update or a delete, so
a moved foreign key or a deleted row's many-to-many links still name what embedded
them), the rows loaded in one batch (``loader_many``). After the commit an
:class:`InstanceJob` hands the rows that still exist and what their invalidators named
to a save's :class:`~drf_instcache.invalidation.cascade.Job`: the same batched cascade
(one batch per model and level), inline or as one Celery task.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Model

from drf_instcache.core.loading import load_one
from drf_instcache.core.strategy import BaseCache
from drf_instcache.exceptions import UnknownModel
from drf_instcache.invalidation.cascade import (
    Job,
    Named,
    Refresh,
    named_by_invalidator,
    versions_of,
)
from drf_instcache.invalidation.instances import connected

CacheSpec = tuple[type[BaseCache], str | None]
"""A connected (cache class, version); ``None`` covers every version."""


def function(cache: BaseCache, name: str, version: str, kind: str) -> Callable[..., Any] | None:
    """``cache.model_function``, with None for a model the cache class does not know."""
    try:
        return cache.model_function(name, version, kind)
    except UnknownModel:
        return None


def concrete(model: type[Model]) -> type[Model]:
    return model._meta.concrete_model or model


def model_name(model: type[Model]) -> str:
    return model._meta.model_name or model.__name__.lower()


def caches_of(model: type[Model]) -> list[CacheSpec]:
    """The connected (cache class, version) pairs refreshing ``model``."""
    model = concrete(model)
    return [key for key, models in list(connected().items()) if model in models]


def load_rows(
    cache: BaseCache, name: str, version: str, pks: Sequence[Any], given: Mapping[str, Any]
) -> list[Any]:
    """The rows: the ``loader_many`` batch, else the ``given`` rows, else the loader's.

    One given row is used as it is, as the per-row receivers do: its invalidator costs
    what its own relations cost, where a reload costs the batch's queries (two or more).
    """
    if given and len(given) == 1 and len(pks) == 1:
        return list(given.values())
    loader_many = function(cache, name, version, "loader_many")
    if loader_many is not None:
        return list((loader_many(list(pks)) or {}).values())
    if given:
        return list(given.values())
    loader = function(cache, name, version, "loader")
    found = [load_one(loader, pk) for pk in pks] if loader is not None else []
    return [obj for obj in found if obj is not None]


def named_by(
    spec: CacheSpec,
    name: str,
    pks: Sequence[Any] = (),
    given: Mapping[str, Any] | None = None,
) -> Named:
    """What the invalidators name for these rows as they are now.

    The rows are ``pks`` loaded (in one batch where the cache class has ``loader_many``;
    ``given`` rows stand in when it has not), or, without ``pks``, the ``given`` rows
    themselves (inserted rows the database returned no primary key for).
    """
    cache_class, version = spec
    cache, found = cache_class(), Named()
    for each in versions_of(cache, version):
        if function(cache, name, each, "invalidator") is None:
            continue
        rows = (
            load_rows(cache, name, each, pks, given or {}) if pks else list((given or {}).values())
        )
        for row in rows:
            named = named_by_invalidator(cache, name, each, _as_loaded(row))
            found.refreshes.extend(named.refreshes)
            found.raw_keys.extend(named.raw_keys)
    return found


def _as_loaded(row: Any) -> Callable[[str], Any]:
    """A ``load(version)`` for :func:`named_by_invalidator` that answers ``row``."""
    return lambda _version: row


@dataclass
class InstanceJob:
    """The instance-cache work of one bulk operation for one connected cache class."""

    cache_class: type[BaseCache]
    version: str | None
    model_name: str
    refreshed: list[Any] = field(default_factory=list)
    """Rows that exist after the write: their entries are refreshed."""
    gone: list[Any] = field(default_factory=list)
    """Rows deleted (or just created): their own entries are dropped, not loaded."""
    stale: Named = field(default_factory=Named)
    """What the invalidators named (before the write, or on the created rows)."""

    def run(self) -> None:
        cache = self.cache_class()
        keys = [*self.stale.raw_keys, *self._own_keys(cache, self.gone)]
        refreshes = [Refresh(self.model_name, pk, self.version) for pk in self.refreshed]
        refreshes.extend(self.stale.refreshes)
        Job(self.cache_class, refreshes, raw_keys=keys).run()

    def _own_keys(self, cache: BaseCache, pks: Iterable[Any]) -> list[str]:
        return [
            cache.key_for(each, self.model_name, pk)
            for each in versions_of(cache, self.version)
            if function(cache, self.model_name, each, "serializer") is not None
            for pk in pks
        ]
