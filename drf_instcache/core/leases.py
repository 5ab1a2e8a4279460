"""Leases: how the core keeps a slow reader from caching a row that changed under it.

Cache-aside has a race: a reader misses, loads the row, and before it stores what it
loaded a writer commits and invalidates; the reader then stores the *old* row, which
stays cached until its lifetime ends. Concurrent cold reads of one popular instance have
a second problem: every one of them loads it from the database (a stampede).

Both are solved with a lease kept in the value key itself:

* a reader that misses claims the key with an atomic add of a *lease marker* (a
  reserved prefix plus a random token, living :attr:`LeasePolicy.ttl` seconds), loads
  the row, and stores it only if the key still holds its own marker (compare-and-set);
* a writer (after its transaction committed) replaces the key with a lease of its own
  before it loads, or deletes it: either way every older lease is gone, so a fill
  prepared from data read before the write is refused;
* a reader that finds someone else's lease waits up to :attr:`LeasePolicy.wait` seconds
  for the value, polling, then loads from the database itself without storing.

Markers start with a NUL byte, which no codec output does, so they are never mistaken
for a representation. :data:`UNCACHEABLE` is a second marker: "this instance is too
large for the backend", so readers go straight to the database instead of competing for
leases whose fills will be refused.

The settings are ``DRF_INSTCACHE_LEASES = {"TTL": 5.0, "WAIT": 0.3}`` (the defaults);
``None`` turns leases off (plain ``set_many`` fills, with the race above).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from drf_instcache.backends.markers import (
    LEASE_LENGTH,
    LEASE_PREFIX,
    MARKER_HEAD,
    UNCACHEABLE,
    is_lease,
    is_marker,
    new_lease,
)
from drf_instcache.exceptions import ImproperlyConfigured

__all__ = [
    "DEFAULT_LEASES",
    "LEASES_SETTING",
    "LEASE_LENGTH",
    "LEASE_PREFIX",
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

LEASES_SETTING = "DRF_INSTCACHE_LEASES"
DEFAULT_LEASES = {"TTL": 5.0, "WAIT": 0.3}

FIRST_POLL = 0.005
"""Seconds before a waiting reader first looks again; the interval then doubles..."""
LONGEST_POLL = 0.05
"""...up to this, so a fill is seen soon without hammering the server."""


@dataclass(frozen=True)
class LeasePolicy:
    """How long a lease holds a key, and how long others wait for its fill."""

    ttl: float = DEFAULT_LEASES["TTL"]
    """Lifetime of a lease marker, in seconds: the longest a crashed or hung holder can
    keep others from filling the key. Longer than any normal load."""
    wait: float = DEFAULT_LEASES["WAIT"]
    """Longest time, in seconds, a reader waits for another's fill before loading from
    the database itself (without storing). 0 never waits."""


def parse_policy(value: Any) -> LeasePolicy | None:
    """Turn a ``DRF_INSTCACHE_LEASES`` value into a policy (None: leases off)."""
    if value is None or value is False:
        return None
    if not isinstance(value, Mapping) or set(value) - set(DEFAULT_LEASES):
        raise ImproperlyConfigured(
            f"{LEASES_SETTING} must be None or a dict with keys TTL and WAIT, e.g. "
            f"{DEFAULT_LEASES!r}; got {value!r}"
        )
    options = {**DEFAULT_LEASES, **value}
    ttl, wait = options["TTL"], options["WAIT"]
    numbers = all(
        isinstance(number, int | float) and not isinstance(number, bool) for number in (ttl, wait)
    )
    if not numbers or ttl <= 0 or wait < 0:
        raise ImproperlyConfigured(
            f"{LEASES_SETTING}: TTL must be a positive number of seconds and WAIT a number "
            f">= 0; got {value!r}"
        )
    return LeasePolicy(ttl=float(ttl), wait=float(wait))


_parsed: tuple[Any, LeasePolicy | None] = (object(), None)


def configured_policy() -> LeasePolicy | None:
    """The policy of the current settings (read at each call, so override_settings applies)."""
    global _parsed
    from drf_instcache.settings import get_setting

    value = get_setting("LEASES", DEFAULT_LEASES)
    seen, policy = _parsed
    if value is seen:
        return policy
    policy = parse_policy(value)
    _parsed = (value, policy)
    return policy


def wait_for_fills(
    get_many: Callable[[Sequence[str]], dict[str, bytes]],
    keys: Sequence[str],
    wait: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, bytes]:
    """Poll ``keys`` leased by others until each holds something else, or ``wait`` ends.

    Returns the last bytes seen for every key that stopped holding a lease (a value, or
    :data:`UNCACHEABLE`). Keys still leased, or emptied (the holder's fill was refused),
    are absent: the caller loads them from the database. Polls back off from
    :data:`FIRST_POLL` to :data:`LONGEST_POLL`, so a waiting reader costs at most a few
    dozen small requests.
    """
    pending = list(keys)
    found: dict[str, bytes] = {}
    deadline = clock() + wait
    interval = FIRST_POLL
    while pending:
        remaining = deadline - clock()
        if remaining <= 0:
            break
        sleep(min(interval, remaining))
        interval = min(interval * 2, LONGEST_POLL)
        current = get_many(pending)
        still: list[str] = []
        for key in pending:
            raw = current.get(key)
            if raw is None:
                continue  # the lease was deleted by a writer, or expired: stop waiting
            if is_lease(raw):
                still.append(key)
            else:
                found[key] = raw
        pending = still
    return found
