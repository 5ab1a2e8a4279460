"""Public face: keep cached instances current (``connect(MyCache)``).

The receivers live in :mod:`drf_instcache.invalidation.instances`, the cascade in
:mod:`drf_instcache.invalidation.cascade`.
"""

from drf_instcache.core.classes import cache_class_path, import_cache_class
from drf_instcache.invalidation.cascade import (
    ASYNC_SETTING,
    Refresh,
    async_task,
    runs_async,
    update_cache_for_instance,
)
from drf_instcache.invalidation.instances import (
    cached_models,
    check_connected_cache_classes,
    connect,
    disconnect,
)

__all__ = [
    "ASYNC_SETTING",
    "Refresh",
    "async_task",
    "cache_class_path",
    "cached_models",
    "check_connected_cache_classes",
    "connect",
    "disconnect",
    "import_cache_class",
    "runs_async",
    "update_cache_for_instance",
]
