"""Face of cached list queries: :mod:`drf_instcache.fastpath.listqueries` (reading) and
:mod:`drf_instcache.invalidation.tables` (``tables_changed``, the receivers)."""

from drf_instcache.fastpath.listqueries import CachedKeys, ListQuery, describe, enabled
from drf_instcache.fastpath.listqueries import generation_key as generation_key
from drf_instcache.invalidation.tables import listen, tables_changed

__all__ = [
    "CachedKeys",
    "ListQuery",
    "describe",
    "enabled",
    "generation_key",
    "listen",
    "tables_changed",
]
