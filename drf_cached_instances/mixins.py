"""``CachedViewMixin`` and ``get_object_or_404`` under their original module."""

from __future__ import annotations

from typing import Any

from rest_framework.generics import get_object_or_404 as _drf_get_object_or_404

from drf_instcache.cache import BaseCache
from drf_instcache.mixins import CachedViewMixin as _CachedViewMixin

__all__ = ["CachedViewMixin", "get_object_or_404"]


def get_object_or_404(queryset: Any, *filter_args: Any, **filter_kwargs: Any) -> Any:
    """DRF's shortcut; a ``CachedQueryset`` answers ``get`` from the cache, a missing or
    malformed key is a 404 either way."""
    return _drf_get_object_or_404(queryset, *filter_args, **filter_kwargs)


class CachedViewMixin(_CachedViewMixin):
    """drf-instcache's mixin, honouring the original hook ``get_queryset_cache()``.

    Views written for drf-cached-instances override ``get_queryset_cache`` to return
    their cache; drf-instcache calls that hook ``get_cache``.
    """

    def get_queryset_cache(self) -> BaseCache:
        """The cache for this request (the original project's name for it)."""
        return super().get_cache()

    def get_cache(self) -> BaseCache:
        """Delegates to :meth:`get_queryset_cache`, so old overrides take effect."""
        return self.get_queryset_cache()
