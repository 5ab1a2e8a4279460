"""Cache classes by dotted path, and the default one for views that name none."""

from __future__ import annotations

import functools
import importlib

from drf_instcache import settings as instcache_settings
from drf_instcache.core.strategy import BaseCache
from drf_instcache.exceptions import ImproperlyConfigured


def cache_class_path(cache_class: type[BaseCache]) -> str:
    """The dotted path a Celery worker imports the cache class from."""
    return f"{cache_class.__module__}.{cache_class.__qualname__}"


def import_cache_class(path: str) -> type[BaseCache]:
    """Import a cache class from :func:`cache_class_path`'s dotted path."""
    module_path, _, name = path.rpartition(".")
    try:
        cache_class = getattr(importlib.import_module(module_path), name)
    except (ImportError, AttributeError, ValueError) as error:
        raise ImproperlyConfigured(f"cannot import cache class {path!r}: {error}") from error
    if not (isinstance(cache_class, type) and issubclass(cache_class, BaseCache)):
        raise ImproperlyConfigured(f"{path!r} is not a BaseCache subclass")
    return cache_class


CACHE_CLASS_SETTING = "CACHE_CLASS"
"""``DRF_INSTCACHE_CACHE_CLASS``: dotted path of the cache class for views that set none."""


@functools.cache
def _import_cache_class(path: str) -> type[BaseCache]:
    try:
        return import_cache_class(path)
    except ImproperlyConfigured as error:
        raise ImproperlyConfigured(f"DRF_INSTCACHE_CACHE_CLASS: {error}") from error


def default_cache_class() -> type[BaseCache]:
    """The class ``DRF_INSTCACHE_CACHE_CLASS`` names, or :class:`BaseCache`."""
    path = instcache_settings.get_setting(CACHE_CLASS_SETTING)
    return _import_cache_class(path) if path else BaseCache
