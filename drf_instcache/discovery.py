"""Face of :mod:`drf_instcache.ops.discovery`, kept so the old import path works."""

from drf_instcache.ops.discovery import (
    CACHE_CLASSES_SETTING,
    Target,
    check_settings,
    configured_cache_classes,
    discover,
    from_setting,
    from_signals,
    from_urlconf,
    known_names,
    select,
    walk,
)

__all__ = [
    "CACHE_CLASSES_SETTING",
    "Target",
    "check_settings",
    "configured_cache_classes",
    "discover",
    "from_setting",
    "from_signals",
    "from_urlconf",
    "known_names",
    "select",
    "walk",
]
