"""The one safe-key rule every backend applies.

Memcached refuses keys longer than 250 bytes or containing whitespace and control
characters; other servers accept more, but a key that works on one backend must work
on all of them, so every adapter maps the caller's key through :func:`safe_key` after
adding its namespace prefix. The mapping is stable (the same input always gives the
same key, in every process) and keeps a readable head so keys stay debuggable.
"""

from __future__ import annotations

import hashlib
import re

MAX_KEY_LENGTH = 250
"""Longest key, in bytes, that any backend is given (memcached's limit)."""

_SAFE = re.compile(rf"[\x21-\x7e]{{1,{MAX_KEY_LENGTH}}}")
_HASH_SEPARATOR = "#"
_DIGEST_CHARS = 40  # blake2b-160 in hex: collisions are not a practical concern


def is_safe(key: str) -> bool:
    """Return True when ``key`` can be stored as-is on every backend."""
    return _SAFE.fullmatch(key) is not None


def _readable_head(key: str, room: int) -> str:
    """Keep the printable ASCII characters of ``key`` (others become ``_``), cut to ``room``."""
    head = "".join(char if 0x21 <= ord(char) <= 0x7E else "_" for char in key[:room])
    return head[:room]


def safe_key(key: str) -> str:
    """Return ``key`` unchanged when it is safe, else a stable hashed replacement.

    The replacement is ``<readable head>#<hex digest of the full key>``: at most
    :data:`MAX_KEY_LENGTH` characters of printable ASCII. The ``#`` marks hashed keys so
    a safe key can never collide with a hashed one unless it was itself produced here.
    """
    if not isinstance(key, str):
        raise TypeError(f"cache keys must be str, not {type(key).__name__}")
    if is_safe(key) and _HASH_SEPARATOR not in key:
        return key
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=20).hexdigest()
    room = MAX_KEY_LENGTH - len(_HASH_SEPARATOR) - _DIGEST_CHARS
    return f"{_readable_head(key, min(room, 80))}{_HASH_SEPARATOR}{digest}"


def validate_prefix(prefix: str) -> str:
    """Check a namespace prefix.

    A prefix must be safe, short enough to leave room for keys, and free of the
    separator and glob characters, so that no namespace's keys can match another
    namespace's ``prefix:*`` pattern when :meth:`Backend.clear` scans for them.
    """
    if (
        not isinstance(prefix, str)
        or not is_safe(prefix)
        or len(prefix) > 64
        or any(char in prefix for char in ":#*?[]")
    ):
        raise ValueError(
            f"KEY_PREFIX {prefix!r} must be 1-64 printable ASCII characters without spaces "
            "or any of : # * ? [ ] (they separate or match namespaces)"
        )
    return prefix


def prefixed(prefix: str, key: str) -> str:
    """Return the server-side key for ``key`` in the namespace ``prefix``."""
    return safe_key(f"{prefix}:{key}")
