"""The cache refresh as a Celery task, for ``DRF_INSTCACHE_ASYNC = True``.

Moving the invalidation cascade to a worker keeps it out of the write request's
response time. The task receives names, not objects (a cache class path, a model name,
a primary key), so it works with any Celery serializer, and reloads everything from the
database, which the signal helpers only ask for after the transaction committed.

Importing this module needs Celery (``pip install 'drf-instcache[celery]'``); the signal
helpers import it only when ``DRF_INSTCACHE_ASYNC`` is on.
"""

from __future__ import annotations

from typing import Any

try:
    from celery import shared_task
except ImportError as error:  # pragma: no cover - exercised only without the extra
    from drf_instcache.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        "drf_instcache.tasks needs Celery: pip install 'drf-instcache[celery]'"
    ) from error

from drf_instcache.core.classes import import_cache_class
from drf_instcache.invalidation.cascade import run_refreshes, update_cache_for_instance


@shared_task(name="drf_instcache.update_cache", ignore_result=True)
def update_cache_task(
    cache_class_path: str, model_name: str, pk: Any, version: str | None = None
) -> int:
    """Refresh one instance's entry and follow its invalidation cascade.

    Returns how many entries were refreshed (handy in eager mode and in task logs).
    """
    cache = import_cache_class(cache_class_path)()
    return update_cache_for_instance(cache, model_name, pk, version=version)


@shared_task(name="drf_instcache.update_caches", ignore_result=True)
def update_caches_task(cache_class_path: str, rows: list[list[Any]]) -> int:
    """Run one write's refreshes (``[model, pk, version, update_only]`` rows) as one
    batched cascade: what ``DRF_INSTCACHE_ASYNC`` sends, one task per write.

    Returns how many entries were refreshed.
    """
    cache = import_cache_class(cache_class_path)()
    return run_refreshes(cache, rows)


@shared_task(name="drf_instcache.drain_outbox", ignore_result=True)
def drain_outbox_task() -> int:
    """Apply the invalidations waiting in the outbox (schedule it with Celery beat to
    drain even when no web process calls the cache). Returns the rows applied."""
    from drf_instcache import settings as instcache_settings
    from drf_instcache.invalidation.outbox import OUTBOX

    return OUTBOX.drain(instcache_settings.get_backend())
