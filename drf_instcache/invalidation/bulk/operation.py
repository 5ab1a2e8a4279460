"""One bulk write's invalidation: prepared around the write, run once it commits.

An :class:`Operation` gathers, for one ``update()``, ``delete()``, ``bulk_update()`` or
``bulk_create()``, the instance-cache jobs of every connected cache class, one rendered
job and the tables of the cached list queries, and runs them after the commit
(:func:`drf_instcache.core.transactions.after_commit`: a rollback runs nothing). The
``prepare_*`` functions read what must be read while the rows are as they were.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Model

from drf_instcache import settings as instcache_settings
from drf_instcache.core import transactions
from drf_instcache.fastpath import listqueries
from drf_instcache.invalidation.bulk import rendered_jobs
from drf_instcache.invalidation.bulk.instance_jobs import (
    InstanceJob,
    caches_of,
    concrete,
    model_name,
    named_by,
)
from drf_instcache.invalidation.rendered import Job as RenderedJob
from drf_instcache.invalidation.rendered import registry
from drf_instcache.invalidation.tables import tables_changed, tables_of

logger = logging.getLogger(__name__)


@dataclass
class Operation:
    """Everything one bulk write invalidates once its transaction commits."""

    using: str | None
    instance_jobs: list[InstanceJob] = field(default_factory=list)
    rendered: RenderedJob | None = None
    tables: list[str] = field(default_factory=list)

    def run(self) -> None:
        for job in self.instance_jobs:
            _guarded("refreshing instance entries", job.run)
        if self.rendered is not None:
            _guarded("deleting rendered entries", self.rendered.run)
        if self.tables:
            tables = self.tables
            _guarded("invalidating list queries", lambda: tables_changed(tables))

    def schedule(self) -> None:
        """Run on commit (at once outside a transaction), if there is anything to run."""
        if self.instance_jobs or self.rendered is not None or self.tables:
            transactions.after_commit(self.run, using=self.using)


def _guarded(what: str, work: Callable[[], Any]) -> None:
    """The write has committed: a cache failure is logged, never raised to the caller."""
    try:
        work()
    except Exception:
        logger.exception("drf-instcache: %s after a bulk write failed; entries may be stale", what)


def list_query_tables(models: Iterable[type[Model]]) -> list[str]:
    """The tables of ``models`` whose cached list queries a write invalidates (if cached)."""
    if not listqueries.enabled():
        return []
    return list(dict.fromkeys(table for model in models for table in tables_of(model)))


def relevant(model: type[Model]) -> bool:
    """Whether a write to ``model`` can make anything cached stale."""
    if not instcache_settings.enabled():
        return False
    model = concrete(model)
    return bool(
        caches_of(model)
        or model in registry.own
        or model in registry.dependents
        or listqueries.enabled()
    )


def prepare_change(
    model: type[Model], pks: Sequence[Any], changed: Iterable[str] | None, using: str | None
) -> Operation:
    """Before rows are updated: what their old state names; what to refresh after.

    ``changed`` names the fields the write sets (``None``: any of them).
    """
    model = concrete(model)
    name = model_name(model)
    operation = Operation(using=using, tables=list_query_tables([model]))
    if not pks:
        return operation
    for spec in caches_of(model):
        stale = named_by(spec, name, pks)
        operation.instance_jobs.append(InstanceJob(*spec, name, refreshed=list(pks), stale=stale))
    moving = rendered_jobs.moved(model, changed)
    before = rendered_jobs.owners_before(model, pks, moving, deleting=False)
    operation.rendered = rendered_jobs.after_commit(model, pks, before, moving, using=using)
    return operation


def prepare_delete(rows: Mapping[type[Model], Sequence[Model]], using: str | None) -> Operation:
    """Before rows are deleted (every model a cascade collected): what they name now."""
    operation = Operation(using=using)
    jobs = []
    for model, instances in rows.items():
        model = concrete(model)
        pks = [obj.pk for obj in instances]
        if not pks:
            continue
        given = {str(obj.pk): obj for obj in instances}
        name = model_name(model)
        for spec in caches_of(model):
            stale = named_by(spec, name, pks, given)
            operation.instance_jobs.append(InstanceJob(*spec, name, gone=pks, stale=stale))
        before = rendered_jobs.owners_before(model, pks, set(), deleting=True, collected=rows)
        jobs.append(
            rendered_jobs.after_commit(model, pks, before, set(), deleted=True, using=using)
        )
    operation.rendered = rendered_jobs.merged(jobs, using)
    _skip_refreshing_the_deleted(operation.instance_jobs)
    return operation


def _skip_refreshing_the_deleted(jobs: Sequence[InstanceJob]) -> None:
    """Drop what the invalidators name among the rows this deletion removes.

    A deleted Choice names its Question; when the Question goes in the same deletion,
    its entries are dropped anyway (``gone``), so reloading it after the commit would
    only find it missing.
    """
    gone: dict[tuple[type[Any], str | None], set[tuple[str, str]]] = {}
    for job in jobs:
        rows = gone.setdefault((job.cache_class, job.version), set())
        rows.update((job.model_name.lower(), str(pk)) for pk in job.gone)
    for job in jobs:
        rows = gone[(job.cache_class, job.version)]
        job.stale.refreshes = [
            refresh
            for refresh in job.stale.refreshes
            if (refresh.model_name.lower(), str(refresh.pk)) not in rows
            or not (job.version is None or refresh.version == job.version)
        ]


def prepare_create(model: type[Model], objs: Sequence[Model], using: str | None) -> Operation:
    """After rows are inserted (before the commit): the related entries that now show them.

    A new row has no entry yet: its invalidator, run on the row as inserted (loaded in
    one batch, ``loader_many``; rows the database returned no pk for as they are), names
    what now embeds it, and no entry of its own is filled.
    """
    model = concrete(model)
    name = model_name(model)
    operation = Operation(using=using, tables=list_query_tables([model]))
    pks = [obj.pk for obj in objs if obj.pk is not None]
    unnamed = {f"new{number}": obj for number, obj in enumerate(objs) if obj.pk is None}
    if unnamed:
        logger.warning(
            "drf-instcache: bulk_create() of %d %s row(s) returned no primary key "
            "(ignore_conflicts?): their rendered owners are not invalidated; call "
            "drf_instcache.invalidate() for them",
            len(unnamed),
            model._meta.label,
        )
    given = {str(obj.pk): obj for obj in objs if obj.pk is not None}
    for spec in caches_of(model):
        stale = named_by(spec, name, pks, given)
        if unnamed:
            extra = named_by(spec, name, given=unnamed)
            stale.refreshes.extend(extra.refreshes)
            stale.raw_keys.extend(extra.raw_keys)
        operation.instance_jobs.append(InstanceJob(*spec, name, gone=pks, stale=stale))
    if pks:
        operation.rendered = rendered_jobs.after_commit(
            model, pks, {}, set(), created=True, using=using
        )
    return operation
