"""Public face (the drf-cached-instances layout): look-alikes of Model and QuerySet.

They live in :mod:`drf_instcache.core.lookalikes`; the outbox table's model, which
Django looks for here, in :mod:`drf_instcache.invalidation.outbox_model`.
"""

from drf_instcache.core.lookalikes import (
    CachedModel,
    CachedQueryset,
    InstanceCache,
    PkOnlyModel,
    PkOnlyQueryset,
)
from drf_instcache.invalidation.outbox_model import PendingInvalidation

__all__ = [
    "CachedModel",
    "CachedQueryset",
    "InstanceCache",
    "PendingInvalidation",
    "PkOnlyModel",
    "PkOnlyQueryset",
]
