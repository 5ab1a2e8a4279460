"""Public face: :class:`BaseCache`, the base class of a project's cache strategy.

The strategy lives in :mod:`drf_instcache.core.strategy`; its read-through/store flow in
:mod:`drf_instcache.core.store`.
"""

from drf_instcache.core.entries import STAMP_FIELD
from drf_instcache.core.loading import load_many_with_related_pks
from drf_instcache.core.namespaces import MODEL_FUNCTIONS, OPTIONAL_MODEL_FUNCTIONS
from drf_instcache.core.strategy import (
    KEY_NAMESPACE,
    BaseCache,
    InstanceMap,
    ObjectSpec,
    UnknownFieldType,
    UnknownVersion,
)
from drf_instcache.core.write import Invalidation

__all__ = [
    "KEY_NAMESPACE",
    "MODEL_FUNCTIONS",
    "OPTIONAL_MODEL_FUNCTIONS",
    "STAMP_FIELD",
    "BaseCache",
    "InstanceMap",
    "Invalidation",
    "ObjectSpec",
    "UnknownFieldType",
    "UnknownVersion",
    "load_many_with_related_pks",
]
