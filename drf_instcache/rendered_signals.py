"""Face of :mod:`drf_instcache.invalidation.rendered`, kept so the old import path works."""

from drf_instcache.invalidation.rendered import invalidate_instances, listen, owners

__all__ = ["invalidate_instances", "listen", "owners"]
