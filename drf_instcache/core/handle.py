"""``BaseCache.cache``: the Django-cache-like handle drf-cached-instances code expects.

The original project exposed Django's cache as ``cache_class().cache`` and projects used
it for their own entries (a counter an invalidator names, a hand-written invalidation).
Here storage is a :class:`~drf_instcache.backends.base.Backend` of bytes, so the handle
gives that code the calls it used (``get``/``set``/``delete`` and their ``_many``
forms, ``clear``) over the configured backend:

* keys are passed to the backend unchanged, so a key written here is the entry that an
  invalidator returning the same string deletes;
* any picklable value is stored (pickled, as Django's cache does, behind a marker);
  bytes written by someone else (the core's instance entries) are returned as they are;
* a cache outage never raises: reads miss, writes are skipped with a warning, and
  deletes are retried once the backend answers, like the core's invalidations.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from drf_instcache.backends.base import Backend
from drf_instcache.exceptions import BackendUnavailable, ValueTooLarge


class KeyDeleter(Protocol):
    """What the handle asks of its cache class (:class:`~drf_instcache.cache.BaseCache`)."""

    def delete_keys(self, keys: Iterable[str]) -> None: ...


__all__ = ["CacheHandle"]

logger = logging.getLogger(__name__)

MARKER = b"H1"
"""Head of every value written through a handle (pickle protocol 5 follows)."""


def encode(value: Any) -> bytes:
    """Marked pickle bytes of ``value``."""
    return MARKER + pickle.dumps(value, protocol=5)


def decode(raw: bytes) -> Any:
    """The value a handle wrote, or ``raw`` itself when a handle did not write it."""
    raw = bytes(raw)
    if raw[:2] != MARKER:
        return raw
    try:
        return pickle.loads(raw[2:])
    except Exception:  # truncated or from an incompatible class: a miss, not a crash
        logger.warning("drf-instcache: unreadable value in the cache handle; ignored")
        return None


class CacheHandle:
    """Django-cache-style calls over one cache class's backend (see the module doc).

    ``timeout`` is in seconds; None means the backend's configured default and 0 or
    less stores nothing (the backend protocol's rule, not Django's "never expire").
    """

    def __init__(self, cache: KeyDeleter, backend: Backend) -> None:
        self.cache = cache
        self.backend = backend

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The values of the keys that hold one (misses are left out)."""
        keys = list(dict.fromkeys(keys))
        if not keys:
            return {}
        try:
            found = self.backend.get_many(keys)
        except BackendUnavailable as error:
            logger.debug("drf-instcache: cache handle read failed: %s", error)
            return {}
        values = {key: decode(raw) for key, raw in found.items()}
        return {key: value for key, value in values.items() if value is not None}

    def get(self, key: str, default: Any = None) -> Any:
        """The value under ``key``, or ``default``."""
        return self.get_many([key]).get(key, default)

    def set_many(self, data: Mapping[str, Any], timeout: float | None = None) -> list[str]:
        """Store the values; returns the keys that could not be stored (Django's shape)."""
        if not data:
            return []
        items = {key: encode(value) for key, value in data.items()}
        try:
            self.backend.set_many(items, timeout=timeout)
        except ValueTooLarge as error:
            logger.warning("drf-instcache: cache handle value too large: %s", error)
            return list(error.keys)
        except BackendUnavailable as error:
            logger.debug("drf-instcache: cache handle write failed: %s", error)
            return list(items)
        return []

    def set(self, key: str, value: Any, timeout: float | None = None) -> None:
        """Store one value."""
        self.set_many({key: value}, timeout=timeout)

    def delete_many(self, keys: Iterable[str]) -> None:
        """Delete the keys; if the backend is down they are deleted once it answers."""
        self.cache.delete_keys(keys)

    def delete(self, key: str) -> None:
        """Delete one key."""
        self.delete_many([key])

    def clear(self) -> None:
        """Remove every entry of this backend's namespace (instance entries included)."""
        try:
            self.backend.clear()
        except BackendUnavailable as error:
            logger.debug("drf-instcache: cache handle clear failed: %s", error)
