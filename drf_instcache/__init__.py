"""drf-instcache: cache Django REST Framework instances, not responses.

Importing the package loads nothing of Django: the public objects live in their
modules (``drf_instcache.cache.BaseCache``, ``drf_instcache.mixins.CachedViewMixin``,
``drf_instcache.signals.connect``...), and :func:`stats` imports what it needs when
called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

    from django.db.models import Model

    from drf_instcache.core.counters import Stats

__version__ = "0.1.0"
__all__ = ["__version__", "invalidate", "stats", "tables_changed"]


def stats(shared: bool = False) -> Stats:
    """What the cache did: hits, misses, fallbacks, errors, in total and per model.

    ``shared=False`` (the default) counts this process since it started (or since
    ``drf_instcache.core.counters.reset()``), without any I/O. ``shared=True`` reads the
    aggregate every process published to the configured backend since the last
    ``manage.py instcache stats --reset`` (one flush and two reads); it raises
    :class:`~drf_instcache.exceptions.BackendUnavailable` when the backend is down.

    Example::

        s = drf_instcache.stats()
        s.hits, s.misses, s.hit_ratio, s.models.get("question", {}).get("hits", 0)
    """
    from drf_instcache.core import counters, shared_stats

    return shared_stats.shared() if shared else counters.current()


def invalidate(model: type[Model], pks: Iterable[Any], using: str | None = None) -> None:
    """Invalidate rows written behind Django's back (raw SQL): see :mod:`drf_instcache.bulk`.

    Instance entries (with their cascades), rendered entries (with their owners) and the
    list queries on the model's tables; after the commit inside a transaction, else now.
    """
    from drf_instcache.invalidation.bulk import raw

    raw.invalidate(model, pks, using=using)


def tables_changed(tables: Iterable[str], using: str | None = None) -> None:
    """Invalidate the cached list queries reading ``tables`` (after the commit, if any)."""
    from drf_instcache.invalidation.bulk import raw

    raw.tables_changed(tables, using=using)
