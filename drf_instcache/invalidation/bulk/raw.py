"""By hand, for writes Django does not see: raw SQL, another program, a disconnected model.

:func:`invalidate` runs what a bulk ``update()`` of the rows runs after it commits;
:func:`invalidating`, around the write, also covers the rows' old relations (a moved
foreign key, a deleted row); :func:`tables_changed` invalidates cached list queries.
Inside a transaction each waits for the commit (a rollback cancels it); outside one it
runs at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db.models import Model

from drf_instcache import settings as instcache_settings
from drf_instcache.core import transactions
from drf_instcache.invalidation import tables
from drf_instcache.invalidation.bulk import rendered_jobs
from drf_instcache.invalidation.bulk.instance_jobs import (
    InstanceJob,
    caches_of,
    concrete,
    model_name,
)
from drf_instcache.invalidation.bulk.operation import (
    Operation,
    list_query_tables,
    prepare_change,
)


def invalidate(model: type[Model], pks: Iterable[Any], using: str | None = None) -> None:
    """Invalidate ``model`` rows changed behind Django's back (raw SQL, another program).

    Instance entries are refreshed with their cascades (the rows' *current* relations),
    rendered entries and those of their owners deleted, list queries on the model's
    tables invalidated. For writes that move foreign keys or delete rows, use
    :func:`invalidating` around the write, so the old relations are covered too.
    """
    if not instcache_settings.enabled():
        return
    pks = list(dict.fromkeys(pks))
    model = concrete(model)
    name = model_name(model)
    operation = Operation(using=using, tables=list_query_tables([model]))
    for spec in caches_of(model):
        operation.instance_jobs.append(InstanceJob(*spec, name, refreshed=pks))
    moving = rendered_jobs.moved(model, None)
    operation.rendered = rendered_jobs.after_commit(
        model, pks, {}, moving, created=True, using=using
    )
    operation.schedule()


@contextmanager
def invalidating(
    model: type[Model], pks: Iterable[Any], using: str | None = None
) -> Iterator[None]:
    """Around a raw write of these rows: their old relations are read before it runs.

    ``with drf_instcache.bulk.invalidating(Choice, [1, 2]): cursor.execute(...)``:
    the invalidators and owner lookups run on the rows as they are, then, after the
    commit, on the rows as they are then (rows that no longer exist are dropped).
    """
    pks = list(dict.fromkeys(pks))
    if not instcache_settings.enabled() or not pks:
        yield
        return
    operation = prepare_change(model, pks, None, using)
    for job in operation.instance_jobs:
        job.refreshed = list(pks)  # a gone row's refresh deletes its entries
    yield
    operation.schedule()


def tables_changed(names: Iterable[str], using: str | None = None) -> None:
    """Invalidate the cached list queries reading the tables ``names`` (after the commit)."""
    names = list(names)
    transactions.after_commit(lambda: tables.tables_changed(names), using=using)
