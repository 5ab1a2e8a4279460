"""Face of :mod:`drf_instcache.fastpath.variants`, kept so the old import path works."""

from drf_instcache.fastpath.variants import (
    INDEX_MARKER,
    INDEX_NAMESPACE,
    INDEX_TIMEOUT,
    MAX_VARIANTS,
    REGISTRATION_ATTEMPTS,
    VariantIndex,
    decode_index,
    encode_index,
)

__all__ = [
    "INDEX_MARKER",
    "INDEX_NAMESPACE",
    "INDEX_TIMEOUT",
    "MAX_VARIANTS",
    "REGISTRATION_ATTEMPTS",
    "VariantIndex",
    "decode_index",
    "encode_index",
]
