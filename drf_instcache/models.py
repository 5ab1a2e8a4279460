"""Public face (the drf-cached-instances layout): look-alikes of Model and QuerySet.

They live in :mod:`drf_instcache.core.lookalikes`.
"""

from drf_instcache.core.lookalikes import (
    CachedModel,
    CachedQueryset,
    InstanceCache,
    PkOnlyModel,
    PkOnlyQueryset,
)

__all__ = [
    "CachedModel",
    "CachedQueryset",
    "InstanceCache",
    "PkOnlyModel",
    "PkOnlyQueryset",
]
