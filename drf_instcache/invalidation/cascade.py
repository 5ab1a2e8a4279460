"""The invalidation cascade: refresh an instance's entries, then everything they name.

An update returns the ``(model, pk, version)`` triples to refresh next; the cascade
follows them with a work queue, not recursion, refreshing each entry once, so deep chains
and cyclic invalidators both terminate. A :class:`Job` is what one signal asks for, run
after the transaction commits: inline, or as the Celery task
:func:`drf_instcache.tasks.update_cache_task` with ``DRF_INSTCACHE_ASYNC = True``.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Model

from drf_instcache import settings as instcache_settings
from drf_instcache.core import transactions
from drf_instcache.core.classes import cache_class_path
from drf_instcache.core.strategy import BaseCache
from drf_instcache.exceptions import ImproperlyConfigured, UnknownModel

logger = logging.getLogger(__name__)

ASYNC_SETTING = "ASYNC"
"""``DRF_INSTCACHE_ASYNC``: run cache refreshes as Celery tasks."""


@dataclass(frozen=True)
class Refresh:
    """One entry to recompute: ``version=None`` means every version of the cache class."""

    model_name: str
    pk: Any
    version: str | None = None

    def identities(self, versions: Sequence[str]) -> list[tuple[str, str, str]]:
        """One identity per version covered; spelling of names and pks normalised.

        Invalidators may spell a model "Question" or "question" and a pk 1 or "1".
        """
        name, pk = self.model_name.lower(), str(self.pk)
        return [(name, pk, version) for version in ([self.version] if self.version else versions)]


def update_cache_for_instance(
    cache: BaseCache,
    model_name: str,
    pk: Any,
    instance: Model | None = None,
    version: str | None = None,
) -> int:
    """Refresh one instance's entries and everything its invalidators name, transitively.

    The row is reloaded; when it is gone its entries are deleted and ``instance`` (as
    ``post_delete`` passed it) tells its invalidator what embedded it. Returns how many
    entries were refreshed.
    """
    return _cascade(cache, [Refresh(model_name, pk, version)], first_instance=instance)


def _cascade(
    cache: BaseCache, start: Iterable[Refresh], first_instance: Model | None = None
) -> int:
    pending = deque(start)
    versions = list(cache.versions)
    done: set[tuple[str, str, str]] = set()
    refreshed = 0
    instance = first_instance
    while pending:
        refresh = pending.popleft()
        identities = refresh.identities(versions)
        if done.issuperset(identities):
            continue
        done.update(identities)
        refreshed += 1
        try:
            follow = cache.update_instance(
                refresh.model_name, refresh.pk, instance=instance, version=refresh.version
            )
        except UnknownModel:
            logger.warning(
                "%s has no cache functions for %r (named by an invalidator); skipped",
                type(cache).__name__,
                refresh.model_name,
            )
            follow = []
        instance = None
        pending.extend(Refresh(name, pk, version) for name, pk, version in follow)
    return refreshed


def versions_of(cache: BaseCache, version: str | None) -> list[str]:
    return [version] if version else list(cache.versions)


@dataclass
class Named:
    """What an instance's invalidator named before the write: refresh it after commit."""

    refreshes: list[Refresh] = field(default_factory=list)
    raw_keys: list[str] = field(default_factory=list)


def named_by_invalidator(
    cache: BaseCache, model_name: str, version: str | None, load: Callable[[str], Any]
) -> Named:
    """Run the model's invalidator on ``load(version)``, for each version."""
    stale = Named()
    for each in versions_of(cache, version):
        invalidator = cache.model_function(model_name, each, "invalidator")
        if invalidator is None:
            continue
        obj = load(each)
        if obj is None:
            continue
        for entry in invalidator(obj) or ():
            if isinstance(entry, str):
                stale.raw_keys.append(entry)
            else:
                name, pk, _immediate = entry
                stale.refreshes.append(Refresh(name, pk, each))
    return stale


def delete_raw_keys(cache: BaseCache, keys: Sequence[str]) -> None:
    if keys:
        cache.delete_keys(keys)


def runs_async() -> bool:
    """True when ``DRF_INSTCACHE_ASYNC`` sends refreshes to Celery."""
    return bool(instcache_settings.get_setting(ASYNC_SETTING, False))


def async_task() -> Any:
    """The Celery task, or an error naming the extra to install."""
    try:
        from drf_instcache.tasks import update_cache_task
    except (ImportError, ImproperlyConfigured) as error:
        raise ImproperlyConfigured(
            "DRF_INSTCACHE_ASYNC is True but Celery is not installed: "
            "pip install 'drf-instcache[celery]', or set DRF_INSTCACHE_ASYNC = False"
        ) from error
    return update_cache_task


def task_pk(pk: Any) -> Any:
    """A pk any Celery serializer can carry (UUIDs and the like travel as strings)."""
    return pk if isinstance(pk, int | str) else str(pk)


@dataclass
class Job:
    """The refreshes one signal asks for, run once the transaction commits."""

    cache_class: type[BaseCache]
    refreshes: list[Refresh]
    deleted: Model | None = None
    """The deleted instance, for its invalidator; then ``refreshes[0]`` is its own entry."""
    raw_keys: list[str] = field(default_factory=list)

    def run(self) -> None:
        cache = self.cache_class()
        delete_raw_keys(cache, self.raw_keys)
        refreshes = list(self.refreshes)
        if self.deleted is not None:
            # The row is gone: drop its entries without a load, and let its invalidator
            # (on the instance as deleted) say what embedded it. A deleted instance
            # could not travel to a Celery worker anyway.
            gone, refreshes = refreshes[0], refreshes[1:]
            follow = cache.forget_instance(
                gone.model_name, gone.pk, self.deleted, version=gone.version
            )
            refreshes.extend(Refresh(name, pk, version) for name, pk, version in follow)
        if not runs_async():
            _cascade(cache, refreshes)
            return
        task, path, versions = async_task(), cache_class_path(self.cache_class), cache.versions
        unique = {tuple(refresh.identities(versions)): refresh for refresh in refreshes}
        for each in unique.values():
            task.delay(path, each.model_name, task_pk(each.pk), each.version)


def schedule(using: str | None, job: Job) -> None:
    """Run ``job`` once the transaction commits (at once outside a transaction)."""
    transactions.after_commit(job.run, using=using)
