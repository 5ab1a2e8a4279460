"""Face of :mod:`drf_instcache.core.leases`, kept so the old import path works."""

from drf_instcache.core.leases import (
    DEFAULT_LEASES,
    FIRST_POLL,
    LEASE_LENGTH,
    LEASE_PREFIX,
    LEASES_SETTING,
    LONGEST_POLL,
    MARKER_HEAD,
    UNCACHEABLE,
    LeasePolicy,
    configured_policy,
    is_lease,
    is_marker,
    new_lease,
    parse_policy,
    wait_for_fills,
)

__all__ = [
    "DEFAULT_LEASES",
    "FIRST_POLL",
    "LEASES_SETTING",
    "LEASE_LENGTH",
    "LEASE_PREFIX",
    "LONGEST_POLL",
    "MARKER_HEAD",
    "UNCACHEABLE",
    "LeasePolicy",
    "configured_policy",
    "is_lease",
    "is_marker",
    "new_lease",
    "parse_policy",
    "wait_for_fills",
]
