"""The rendered (fast-path) work of a bulk write: the rows' entries and their owners'.

As for one save (:mod:`drf_instcache.invalidation.rendered`), but for all the rows at
once: the rows' own entries are deleted after the commit, and the owners showing them
are found with one query per dependency: *before* the write when it can move the link
column of a dependency (an update naming that column, a delete), and *after* the commit
for what shows the rows then.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.db.models import Model

from drf_instcache.fastpath.dependencies import REVERSE, Dependency
from drf_instcache.invalidation.rendered import Job, OwnerFinder, Stale, add_pks, registry


def _attnames(model: type[Model], fields: Iterable[str]) -> set[str]:
    names = set()
    for name in fields:
        try:
            names.add(str(model._meta.get_field(name).attname))  # type: ignore[union-attr]
        except Exception:
            names.add(name)
    return names


def moved(model: type[Model], changed: Iterable[str] | None) -> set[Dependency]:
    """Dependencies whose link column (on ``model``) the write may change (``None``: any)."""
    columns = None if changed is None else _attnames(model, changed)
    return {
        dependency
        for _, dependency in registry.dependents.get(model, ())
        if dependency.steps[-1].kind == REVERSE
        and (columns is None or dependency.steps[-1].link_attname in columns)
    }


def owners_before(
    model: type[Model],
    pks: Sequence[Any],
    moving: set[Dependency],
    deleting: bool,
    collected: Mapping[type[Model], Sequence[Model]] | None = None,
) -> Stale:
    """Owners showing the rows *before* the write (a moved link, a delete).

    ``collected``: every row of the deletion (Django's collector), by concrete model.
    """
    stale: Stale = {}
    find = OwnerFinder(collected=collected)
    for plan, dependency in registry.dependents.get(model, ()):
        if deleting or dependency in moving:
            add_pks(stale, plan, find(dependency, pks))
    return stale


def after_commit(
    model: type[Model],
    pks: Sequence[Any],
    before: Stale,
    moving: set[Dependency],
    created: bool = False,
    deleted: bool = False,
    using: str | None = None,
) -> Job | None:
    """The job run on commit: own entries, ``before``'s owners, owners found then."""
    job = Job(stale=dict(before), using=using)
    for plan in registry.own.get(model, ()):
        add_pks(job.stale, plan, pks)
    if not deleted:
        for plan, dependency in registry.dependents.get(model, ()):
            last = dependency.steps[-1]
            if dependency.embeds or (last.kind == REVERSE and (created or dependency in moving)):
                job.lookups.append((plan, dependency, list(pks), None))
    return job if (job.stale or job.lookups) else None


def merged(jobs: Iterable[Job | None], using: str | None) -> Job | None:
    """One job doing what ``jobs`` do (the models of a cascading delete)."""
    into = Job(using=using)
    for job in jobs:
        if job is None:
            continue
        for plan, pks in job.stale.items():
            add_pks(into.stale, plan, pks)
        into.lookups.extend(job.lookups)
    return into if (into.stale or into.lookups) else None
