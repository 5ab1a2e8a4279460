"""The invalidation cascade: refresh an instance's entries, then everything they name.

An update returns the ``(model, pk, version)`` triples to refresh next; the cascade
follows them with a work queue, not recursion, refreshing each entry once, so deep chains
and cyclic invalidators both terminate. A :class:`Job` is what one signal asks for, run
after the transaction commits: inline, or as the Celery task
:func:`drf_instcache.tasks.update_cache_task` with ``DRF_INSTCACHE_ASYNC = True``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Model

from drf_instcache import settings as instcache_settings
from drf_instcache.core import transactions, unsettled, write
from drf_instcache.core.classes import cache_class_path
from drf_instcache.core.strategy import BaseCache
from drf_instcache.exceptions import ImproperlyConfigured, UnknownModel
from drf_instcache.invalidation.outbox import OUTBOX, durable
from drf_instcache.invalidation.policies import CascadePolicies

logger = logging.getLogger(__name__)

ASYNC_SETTING = "ASYNC"
"""``DRF_INSTCACHE_ASYNC``: run cache refreshes as Celery tasks."""


@dataclass(frozen=True)
class Refresh:
    """One entry to recompute: ``version=None`` means every version of the cache class.

    ``update_only``: refresh it only if it is cached (what an invalidator names); the
    written instance itself is always refreshed.
    """

    model_name: str
    pk: Any
    version: str | None = None
    update_only: bool = False

    def identities(self, versions: Sequence[str]) -> list[tuple[str, str, str]]:
        """One identity per version covered; spelling of names and pks normalised.

        Invalidators may spell a model "Question" or "question" and a pk 1 or "1".
        """
        name, pk = self.model_name.lower(), str(self.pk)
        return [(name, pk, version) for version in ([self.version] if self.version else versions)]


@dataclass
class Walked:
    """What a cascade did: entries refreshed, and what it could not reach."""

    refreshed: int = 0
    unreached: list[Refresh] = field(default_factory=list)
    """Refreshes not run because the backend failed: replay them once it answers."""


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
    entries were refreshed. What the backend could not take is replayed when it answers.
    """
    walked = cascade(cache, [Refresh(model_name, pk, version)], first_instance=instance)
    replay_later(cache, walked.unreached)
    return walked.refreshed


def cascade(
    cache: BaseCache, start: Iterable[Refresh], first_instance: Model | None = None
) -> Walked:
    """Refresh ``start``, then what their invalidators name, one batch per model and level.

    Each level groups its refreshes by (model, version): one ``get_many``, one batch
    load and one write per group (:meth:`BaseCache.update_instances`), so the queries
    of a cascade depend on its depth and the models it crosses, not on its fan-out.
    Named instances are refreshed only if cached (an unchanged or uncached entry stops
    the cascade), or dropped unloaded where the cascade policy says ``drop``. Each
    entry is visited once, so cyclic invalidators terminate.
    """
    versions = list(cache.versions)
    policies = CascadePolicies(cache)
    batched = type(cache).update_instance is BaseCache.update_instance
    done: set[tuple[str, str, str]] = set()
    walked = Walked()
    level = list(start)
    while level:
        groups = _group(level, versions, done)
        follow: list[Refresh] = []
        for index, ((name, version, update_only), pks) in enumerate(groups.items()):
            if update_only and policies.drops(name):
                walked.refreshed += write.drop_instances(cache, name, pks, version).refreshed
                continue
            given = _given(first_instance, pks)
            try:
                if batched:
                    outcome = cache.update_instances(name, pks, version, update_only, given)
                else:
                    outcome = _one_by_one(cache, name, pks, version, given)
            except UnknownModel:
                logger.warning(
                    "%s has no cache functions for %r (named by an invalidator); skipped",
                    type(cache).__name__,
                    name,
                )
                continue
            if outcome.unreachable:
                rest = list(groups.items())[index:]
                unreached = [r for (n, v, u), p in rest for r in _refreshes(n, v, u, p)]
                walked.unreached = [*unreached, *follow]
                return walked
            walked.refreshed += outcome.refreshed
            follow.extend(
                Refresh(each.model_name, each.pk, each.version, update_only=not each.immediate)
                for each in outcome.follow
            )
        first_instance = None
        level = follow
    return walked


def _group(
    level: Iterable[Refresh], versions: Sequence[str], done: set[tuple[str, str, str]]
) -> dict[tuple[str, str | None, bool], list[Any]]:
    """(model, version, update_only) -> pks not refreshed yet; a full refresh wins."""
    chosen: dict[tuple[str, str, str], Refresh] = {}
    for refresh in level:
        identities = tuple(refresh.identities(versions))
        if done.issuperset(identities):
            continue
        earlier = chosen.get(identities[0])
        if earlier is None or (earlier.update_only and not refresh.update_only):
            chosen[identities[0]] = refresh
    groups: dict[tuple[str, str | None, bool], list[Any]] = {}
    for refresh in chosen.values():
        done.update(refresh.identities(versions))
        group = (refresh.model_name.lower(), refresh.version, refresh.update_only)
        groups.setdefault(group, []).append(refresh.pk)
    return groups


def _refreshes(name: str, version: str | None, update_only: bool, pks: list[Any]) -> list[Refresh]:
    return [Refresh(name, pk, version, update_only) for pk in pks]


def _given(instance: Model | None, pks: list[Any]) -> dict[Any, Model] | None:
    """The caller's copy of the first instance (a deleted row's invalidator needs it)."""
    if instance is None or len(pks) != 1:
        return None
    return {pks[0]: instance}


def _one_by_one(
    cache: BaseCache, name: str, pks: list[Any], version: str | None, given: Any
) -> write.Outcome:
    """A cache class that overrides ``update_instance``: call it per instance, as before."""
    outcome = write.Outcome()
    for pk in pks:
        instance = (given or {}).get(pk)
        for model_name, related_pk, each_version in cache.update_instance(
            name, pk, instance=instance, version=version
        ):
            outcome.follow.append(write.Follow(model_name, related_pk, each_version, True))
        outcome.refreshed += 1
    return outcome


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
                name, pk, immediate = entry
                stale.refreshes.append(Refresh(name, pk, each, update_only=not immediate))
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
        from drf_instcache.tasks import update_caches_task
    except (ImportError, ImproperlyConfigured) as error:
        raise ImproperlyConfigured(
            "DRF_INSTCACHE_ASYNC is True but Celery is not installed: "
            "pip install 'drf-instcache[celery]', or set DRF_INSTCACHE_ASYNC = False"
        ) from error
    return update_caches_task


def task_pk(pk: Any) -> Any:
    """A pk any Celery serializer can carry (UUIDs and the like travel as strings)."""
    return pk if isinstance(pk, int | str) else str(pk)


def replay_later(cache: BaseCache, refreshes: Sequence[Refresh]) -> None:
    """Run ``refreshes`` as a cascade once the backend answers again.

    Their keys were remembered by the batch that failed, so they are deleted first;
    this then refreshes them and follows their invalidators, as the write would have.
    """
    backend = cache.backend
    if not refreshes or backend is None:
        return
    if durable(backend) and OUTBOX.record_refreshes(type(cache), refreshes):
        return  # drained (by any process) once the backend answers
    cache_class, todo = type(cache), tuple(refreshes)

    def replay() -> None:
        try:
            again = cache_class()
            replay_later(again, cascade(again, todo).unreached)
        except Exception:
            logger.exception("drf-instcache: replaying %d deferred refresh(es) failed", len(todo))

    unsettled.defer(backend, replay)


def _replay_refused(
    cache: BaseCache, model_name: str, pks: Sequence[Any], version: str | None, only: bool
) -> None:
    replay_later(cache, [Refresh(model_name, pk, version, only) for pk in pks])


write.set_replayer(_replay_refused)


def _replay_stored(cache_class: type[BaseCache], rows: list[Any]) -> bool:
    """Run the outbox's refreshes as one cascade; True when the backend took them all."""
    return not cascade(cache_class(), refreshes_of(rows)).unreached


OUTBOX.replay = _replay_stored


@dataclass
class Job:
    """The refreshes one signal asks for, run once the transaction commits."""

    cache_class: type[BaseCache]
    refreshes: list[Refresh]
    deleted: Model | None = None
    """The deleted instance, for its invalidator; then ``refreshes[0]`` is its own entry."""
    raw_keys: list[str] = field(default_factory=list)

    def run(self) -> None:
        run_jobs([self])


def run_jobs(jobs: Sequence[Job]) -> None:
    """Run the jobs one transaction scheduled: one batched cascade per cache class."""
    by_class: dict[type[BaseCache], list[Job]] = {}
    for job in jobs:
        by_class.setdefault(job.cache_class, []).append(job)
    for cache_class, group in by_class.items():
        _run_group(cache_class, group)


def _run_group(cache_class: type[BaseCache], jobs: Sequence[Job]) -> None:
    cache = cache_class()
    delete_raw_keys(cache, [key for job in jobs for key in job.raw_keys])
    refreshes: list[Refresh] = []
    deleted: dict[tuple[str, str | None], dict[Any, Model]] = {}
    for job in jobs:
        own = list(job.refreshes)
        if job.deleted is not None:
            # The row is gone: its entries are dropped without a load, and its invalidator
            # (on the instance as deleted) says what embedded it. A deleted instance could
            # not travel to a Celery worker anyway.
            gone, own = own[0], own[1:]
            deleted.setdefault((gone.model_name.lower(), gone.version), {})[gone.pk] = job.deleted
        refreshes.extend(own)
    for (name, version), instances in deleted.items():
        refreshes.extend(_forget(cache, name, version, instances))
    if not runs_async():
        replay_later(cache, cascade(cache, refreshes).unreached)
        return
    rows = rows_of(refreshes, cache.versions)
    async_task().delay(cache_class_path(cache_class), rows)


def _forget(
    cache: BaseCache, name: str, version: str | None, instances: dict[Any, Model]
) -> list[Refresh]:
    """Drop deleted rows' entries in one call; return what their invalidators name."""
    if type(cache).forget_instance is not BaseCache.forget_instance:
        follow = [
            each
            for pk, instance in instances.items()
            for each in cache.forget_instance(name, pk, instance, version=version)
        ]
        return [Refresh(model, pk, each_version) for model, pk, each_version in follow]
    outcome = write.forget_instances(cache, name, instances, version)
    return [
        Refresh(each.model_name, each.pk, each.version, update_only=not each.immediate)
        for each in outcome.follow
    ]


def rows_of(refreshes: Sequence[Refresh], versions: Sequence[str]) -> list[list[Any]]:
    """The refreshes as JSON-able ``[model, pk, version, update_only]`` rows, each entry
    once (what a Celery task carries)."""
    unique = {tuple(refresh.identities(versions)): refresh for refresh in refreshes}
    return [
        [each.model_name, task_pk(each.pk), each.version, each.update_only]
        for each in unique.values()
    ]


def refreshes_of(rows: Iterable[Sequence[Any]]) -> list[Refresh]:
    """:func:`rows_of`'s rows (or the outbox's) back as refreshes."""
    return [Refresh(str(name), pk, version, bool(only)) for name, pk, version, only in rows]


def run_refreshes(cache: BaseCache, rows: Sequence[Sequence[Any]]) -> int:
    """Run the rows :class:`Job` sent to Celery as one cascade; return entries refreshed."""
    walked = cascade(cache, refreshes_of(rows))
    replay_later(cache, walked.unreached)
    return walked.refreshed


def schedule(using: str | None, job: Job) -> None:
    """Run ``job`` once the transaction commits (at once outside a transaction), with the
    other jobs of that transaction: one batched cascade for all of its writes."""
    transactions.batch_until_commit("instance-jobs", job, run_jobs, using=using)
