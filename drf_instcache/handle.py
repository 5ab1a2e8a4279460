"""Face of :mod:`drf_instcache.core.handle`, kept so the old import path works."""

from drf_instcache.core.handle import (
    MARKER,
    CacheHandle,
    KeyDeleter,
    decode,
    encode,
)

__all__ = [
    "MARKER",
    "CacheHandle",
    "KeyDeleter",
    "decode",
    "encode",
]
