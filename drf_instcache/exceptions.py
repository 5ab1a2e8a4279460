"""Typed errors raised by drf-instcache.

Every error the library raises on purpose derives from :class:`InstcacheError`, so
callers can catch the library's failures without catching their own bugs.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.core.exceptions import ImproperlyConfigured as DjangoImproperlyConfigured


class InstcacheError(Exception):
    """Base class of every error drf-instcache raises on purpose."""


class BackendUnavailable(InstcacheError):
    """The cache server could not be reached, timed out or answered with an error.

    The strategy core catches it, logs a warning and serves from the database: a cache
    outage must never turn into a failed request.
    """


class ValueTooLarge(InstcacheError):
    """One or more values exceed the largest item the backend can store.

    ``set_many`` stores every item that fits and then raises this error naming the
    keys it refused, so the caller can skip caching just those instances.
    """

    def __init__(self, keys: Sequence[str], limit: int, sizes: Sequence[int] = ()) -> None:
        self.keys = list(keys)
        self.limit = limit
        self.sizes = list(sizes)
        largest = max(self.sizes) if self.sizes else None
        detail = f" (largest {largest} bytes)" if largest is not None else ""
        super().__init__(
            f"{len(self.keys)} value(s) exceed the backend's item limit of {limit} bytes"
            f"{detail}: {', '.join(self.keys[:5])}{' ...' if len(self.keys) > 5 else ''}"
        )


class ImproperlyConfigured(InstcacheError, DjangoImproperlyConfigured):
    """A ``DRF_INSTCACHE_*`` setting or a backend option is wrong.

    Subclasses Django's own ``ImproperlyConfigured`` so existing handlers keep working.
    """


class UnknownModel(InstcacheError, LookupError, AttributeError):
    """A cache class was asked about a model it has no functions for.

    Also an ``AttributeError``: drf-cached-instances raised that (a missing method), and
    code written for it catches it."""


class CorruptValue(InstcacheError, ValueError):
    """Bytes read from the cache could not be decoded; the core treats them as a miss."""
