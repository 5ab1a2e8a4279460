"""Public face: :class:`CachedViewMixin`, DRF views whose reads come from the cache.

The mixin lives in :mod:`drf_instcache.drf.views`.
"""

from drf_instcache.core.classes import CACHE_CLASS_SETTING, default_cache_class
from drf_instcache.drf.views import CACHED_METHODS, CachedViewMixin

__all__ = ["CACHED_METHODS", "CACHE_CLASS_SETTING", "CachedViewMixin", "default_cache_class"]
