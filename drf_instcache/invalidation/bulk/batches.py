"""The cascade of a bulk write, a level at a time, each model's rows loaded in one batch.

A save's cascade (:mod:`drf_instcache.invalidation.cascade`) loads one row per refresh,
which is right for one row and grows with the rows of a bulk write. Here every level's
refreshes are grouped by (model, version); a group the cache class can load with its
``loader_many`` is loaded in one query and handed to :meth:`BaseCache.update_instance`
as the loader's answers, so the queries of a bulk write do not grow with its rows. Each
entry is refreshed once, as in a save's cascade, so cyclic invalidators terminate.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from drf_instcache.core.strategy import BaseCache
from drf_instcache.exceptions import UnknownModel
from drf_instcache.invalidation.cascade import Refresh

logger = logging.getLogger(__name__)

Identity = tuple[str, str, str]


def function(cache: BaseCache, name: str, version: str, kind: str) -> Callable[..., Any] | None:
    """``cache.model_function``, with None for a model the cache class does not know."""
    try:
        return cache.model_function(name, version, kind)
    except UnknownModel:
        return None


def refresh_in_batches(cache: BaseCache, start: Iterable[Refresh]) -> int:
    """Refresh ``start`` and everything it names, transitively; return the entries refreshed."""
    versions = list(cache.versions)
    seen: set[Identity] = set()
    level = list(start)
    count = 0
    while level:
        todo = _not_seen(level, versions, seen)
        count += len(todo)
        with _preloaded(cache, todo, versions):
            level = [follow for refresh in todo for follow in _update(cache, refresh)]
    return count


def _not_seen(level: Sequence[Refresh], versions: list[str], seen: set[Identity]) -> list[Refresh]:
    """The refreshes of ``level`` that cover an entry not refreshed yet (marked now)."""
    todo = []
    for refresh in level:
        identities = set(refresh.identities(versions))
        if identities - seen:
            seen |= identities
            todo.append(refresh)
    return todo


def _update(cache: BaseCache, refresh: Refresh) -> list[Refresh]:
    """One entry brought up to date; the refreshes its invalidator asks for next."""
    try:
        triples = cache.update_instance(refresh.model_name, refresh.pk, version=refresh.version)
    except UnknownModel:
        logger.warning(
            "%s has no cache functions for %r (named by an invalidator); skipped",
            type(cache).__name__,
            refresh.model_name,
        )
        return []
    return [Refresh(name, pk, version) for name, pk, version in triples]


@contextmanager
def _preloaded(
    cache: BaseCache, refreshes: Sequence[Refresh], versions: Sequence[str]
) -> Iterator[None]:
    """Within the block, ``cache`` loads each (model, version) group from one batch.

    The loader is replaced on this cache *instance* only (``model_function`` finds the
    instance attribute first) and removed again when the block ends.
    """
    groups: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for refresh in refreshes:
        for each in [refresh.version] if refresh.version else versions:
            groups[(refresh.model_name.lower(), each)].append(refresh.pk)
    installed = []
    try:
        for (name, version), pks in groups.items():
            loader_many = function(cache, name, version, "loader_many")
            if loader_many is None or function(cache, name, version, "loader") is None:
                continue
            rows = loader_many(list(dict.fromkeys(pks))) or {}
            loaded = {str(pk): obj for pk, obj in rows.items()}
            attribute = f"{name}_{version}_loader"
            setattr(cache, attribute, lambda pk, loaded=loaded: loaded.get(str(pk)))
            installed.append(attribute)
        yield
    finally:
        for attribute in installed:
            cache.__dict__.pop(attribute, None)
