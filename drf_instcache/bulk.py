"""Public face: bulk writes that invalidate (``objects = InstcacheManager()``).

The queryset lives in :mod:`drf_instcache.invalidation.bulk.queryset`, the raw-SQL
helpers in :mod:`drf_instcache.invalidation.bulk.raw`, the check I030 in
:mod:`drf_instcache.invalidation.bulk.check`. README, "Bulk writes", has the details.
"""

from drf_instcache.invalidation.bulk.check import check_bulk_managers
from drf_instcache.invalidation.bulk.queryset import (
    InstcacheManager,
    InstcacheQuerySet,
    InstcacheQuerySetMixin,
    has_mixin,
    install,
)
from drf_instcache.invalidation.bulk.raw import invalidate, invalidating, tables_changed

__all__ = [
    "InstcacheManager",
    "InstcacheQuerySet",
    "InstcacheQuerySetMixin",
    "check_bulk_managers",
    "has_mixin",
    "install",
    "invalidate",
    "invalidating",
    "tables_changed",
]
