"""Face of :mod:`drf_instcache.backends.compression`, kept so the old import path works."""

from drf_instcache.backends.compression import (
    ALGORITHMS,
    COMPRESSION_SETTING,
    DEFAULT_LEVEL,
    DEFAULT_MIN_BYTES,
    INSTALL_HINT,
    ZSTD_HEAD,
    CompressedBackend,
    CompressionPolicy,
    LeasingCompressedBackend,
    compress,
    decompress,
    parse_policy,
)
from drf_instcache.settings import compression_policy as configured_policy

__all__ = [
    "ALGORITHMS",
    "COMPRESSION_SETTING",
    "DEFAULT_LEVEL",
    "DEFAULT_MIN_BYTES",
    "INSTALL_HINT",
    "ZSTD_HEAD",
    "CompressedBackend",
    "CompressionPolicy",
    "LeasingCompressedBackend",
    "compress",
    "configured_policy",
    "decompress",
    "parse_policy",
]
