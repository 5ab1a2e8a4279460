"""``from drf_cached_instances.cache import BaseCache`` keeps working."""

from drf_instcache.cache import BaseCache

__all__ = ["BaseCache"]
