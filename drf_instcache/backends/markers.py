"""Markers: reserved values the core stores in place of an entry (leases, too large).

Every marker starts with :data:`MARKER_HEAD`, which no codec's output starts with, so
every layer (the core, the compression layer) tells a marker from an entry by its
first byte. The lease protocol itself is :mod:`drf_instcache.core.leases`.
"""

from __future__ import annotations

import secrets

MARKER_HEAD = b"\x00"
"""First byte of every marker; no codec's output starts with it."""

LEASE_PREFIX = MARKER_HEAD + b"instcache-lease:"
_TOKEN_BYTES = 8
LEASE_LENGTH = len(LEASE_PREFIX) + 2 * _TOKEN_BYTES

UNCACHEABLE = MARKER_HEAD + b"instcache-too-large"
"""Stored instead of a representation the backend refused for its size."""


def new_lease() -> bytes:
    """A fresh lease marker: the reserved prefix and a random token."""
    return LEASE_PREFIX + secrets.token_hex(_TOKEN_BYTES).encode("ascii")


def is_lease(raw: bytes) -> bool:
    """True for a lease marker (someone is loading this key right now)."""
    return len(raw) == LEASE_LENGTH and bytes(raw[: len(LEASE_PREFIX)]) == LEASE_PREFIX


def is_marker(raw: bytes) -> bool:
    """True for any reserved marker: a lease, or :data:`UNCACHEABLE`."""
    return raw[:1] == MARKER_HEAD and (is_lease(raw) or bytes(raw) == UNCACHEABLE)
