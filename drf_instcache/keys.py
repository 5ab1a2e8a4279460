"""Face of :mod:`drf_instcache.backends.keys`, kept so the old import path works."""

from drf_instcache.backends.keys import (
    MAX_KEY_LENGTH,
    is_safe,
    prefixed,
    safe_key,
    validate_prefix,
)

__all__ = [
    "MAX_KEY_LENGTH",
    "is_safe",
    "prefixed",
    "safe_key",
    "validate_prefix",
]
