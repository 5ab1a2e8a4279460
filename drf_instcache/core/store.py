"""The read-through/store flow over a Backend, with the core's error policy.

Both levels use it: instance entries (:mod:`drf_instcache.core.strategy`) and rendered
entries (:mod:`drf_instcache.fastpath.fetch`). A read sorts what ``get_many`` found,
then :meth:`Store.claim` puts leases on the keys to fill and waits (boundedly) for the
keys other readers are filling; once the misses are loaded, :meth:`Claim.write_back`
stores them over the leases (or as plain writes without them). A failing backend is
counted, never raised: the data then comes from the database; the outage is logged
once, when it starts and when it ends (:mod:`drf_instcache.core.outage`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

from drf_instcache.backends.base import (
    Backend,
    LeasingBackend,
    fill_many,
    fill_many_quietly,
    get_many_claiming,
    supports_leases,
)
from drf_instcache.core import counters as stats
from drf_instcache.core import transactions, unsettled
from drf_instcache.core.identity import serial
from drf_instcache.core.leases import (
    UNCACHEABLE,
    LeasePolicy,
    configured_policy,
    is_marker,
    new_lease,
    wait_for_fills,
)
from drf_instcache.exceptions import BackendUnavailable, CorruptValue, ValueTooLarge

logger = logging.getLogger(__name__)

_MAX_WARNED_KEYS = 1000
_too_large_warned: set[str] = set()
_corrupt_warned: set[str] = set()

_MAX_SCOPES = 10_000
_cold_scopes: dict[str, bool] = {}
"""Per backend and read scope (a level, its model(s), list or one): whether its last read missed
at least half its keys. A cold read leases its empty keys in the same round trip as the
read; a warm one stays a plain ``get_many`` (the script costs a warm read ~30 us more)."""

Warn = Callable[[str, BackendUnavailable], None]
"""How a level reports a failed operation (``"read"``, ``"lease"``, ``"write"``...)."""


# -- logging ------------------------------------------------------------------------------
def warn_unavailable(operation: str, error: BackendUnavailable) -> None:
    """Count a failed call; the outage itself is logged once (:mod:`.outage`)."""
    stats.incr("errors")
    logger.debug("drf-instcache: cache %s failed, serving from the database: %s", operation, error)


def warn_corrupt(key: str, error: CorruptValue) -> None:
    """Count an unreadable value; warn once per key and process, then stay quiet."""
    stats.incr("corrupt")
    if key in _corrupt_warned:
        logger.debug("drf-instcache: %s is unreadable again, reloading: %s", key, error)
        return
    if len(_corrupt_warned) < _MAX_WARNED_KEYS:
        _corrupt_warned.add(key)
    logger.warning(
        "drf-instcache: cached value of %s is unreadable (%s); treated as a miss and "
        "replaced from the database",
        key,
        error,
    )


def warn_too_large(error: ValueTooLarge) -> None:
    """Warn once per key and process: an oversized instance stays oversized."""
    new = [key for key in error.keys if key not in _too_large_warned]
    if not new:
        logger.debug("drf-instcache: still too large to cache: %s", error.keys)
        return
    if len(_too_large_warned) < _MAX_WARNED_KEYS:
        _too_large_warned.update(new)
    logger.warning(
        "drf-instcache: %d instance(s) too large to cache (limit %d bytes), served from "
        "the database: %s",
        len(new),
        error.limit,
        ", ".join(new[:5]),
    )


# -- the store ----------------------------------------------------------------------------
class Store:
    """One backend with the core's error policy: what fails is logged, not raised.

    ``timeout`` is the lifetime of written entries (None: the backend's TIMEOUT);
    ``warn`` reports a failed operation (the rendered level words it its own way).
    """

    __slots__ = ("backend", "timeout", "warn")

    def __init__(
        self, backend: Backend, timeout: float | None = None, warn: Warn = warn_unavailable
    ) -> None:
        self.backend = backend
        self.timeout = timeout
        self.warn = warn

    def lease_policy(self) -> LeasePolicy | None:
        """The lease policy, when it is on and the backend can do conditional writes."""
        if not supports_leases(self.backend):
            return None
        return configured_policy()

    def settle(self) -> bool:
        """Apply what earlier invalidations could not, now that we call the backend again:
        delete the keys they left, then run the cascades they deferred, then what the
        outbox holds. Returns whether anything was pending (values read before are stale)."""
        backend = self.backend
        if not unsettled.pending(backend):
            return False
        keys = unsettled.take(backend)
        if keys:
            try:
                backend.delete_many(keys)
            except BackendUnavailable as error:
                unsettled.remember(backend, keys)
                logger.debug("drf-instcache: %d stale key(s) still to delete: %s", len(keys), error)
                return True
            stats.incr("deleted", len(keys))
            logger.info(
                "drf-instcache: the cache answers again; deleted %d key(s) whose invalidation "
                "had failed",
                len(keys),
            )
        for work in unsettled.take_work(backend):
            work()  # a cascade: it defers itself again if the backend fails anew
        unsettled.drain_journal(backend)  # what other processes (or an earlier one) left
        return True

    def delete(self, keys: Sequence[str], invalidating: bool = False) -> None:
        """Delete keys; a failure is logged, not raised. Deleting is always safe: at worst
        it costs a miss, and it ends any lease on the key, so no older fill can land.

        ``invalidating``: the keys may hold stale data, so a failed delete is retried
        once the backend answers again (:mod:`drf_instcache.core.unsettled`).
        """
        keys = list(dict.fromkeys(keys))
        if not keys:
            return
        try:
            self.backend.delete_many(keys)
            stats.incr("deleted", len(keys))
        except BackendUnavailable as error:
            self.warn("delete", error)
            if invalidating:
                unsettled.remember(self.backend, keys)

    def store(self, items: Mapping[str, bytes], invalidating: bool = False) -> list[str]:
        """``set_many`` with the core's error policy; returns the keys refused for size.

        This is the path of backends without conditional writes: the refused keys are
        simply not cached (the caller deletes the stale value they replace).
        """
        if not items:
            return []
        try:
            self.backend.set_many(items, timeout=self.timeout)
        except ValueTooLarge as error:
            stats.incr("stored", len(items) - len(error.keys))
            stats.incr("too_large", len(error.keys))
            warn_too_large(error)
            return list(error.keys)
        except BackendUnavailable as error:
            self.warn("write", error)
            if invalidating:
                unsettled.remember(self.backend, items)
            return []
        stats.incr("stored", len(items))
        return []

    def fill(self, items: Mapping[str, tuple[bytes, bytes]], invalidating: bool = False) -> None:
        """Store loaded values over our own leases; refused fills lost to a newer write.

        ``invalidating``: a writer's fill; if it fails, the key holds our lease or an
        older value, so it is deleted once the backend answers again. A reader's fill is
        sent without waiting for the answer where the backend can (the server still
        compares each lease), so its refusals are not counted in ``fills_refused``.
        """
        if not items:
            return
        leasing: LeasingBackend = self.backend  # type: ignore[assignment]
        leases = {expected for expected, _ in items.values()}
        try:
            if len(leases) == 1:  # one read's fill: its keys share its lease
                (lease,) = leases
                values = {key: value for key, (_, value) in items.items()}
                if invalidating:
                    stored = fill_many(leasing, lease, values, self.timeout)
                else:  # nothing the reader answers depends on it: do not wait for it
                    fill_many_quietly(leasing, lease, values, self.timeout)
                    stored = list(values)
            else:
                stored = leasing.compare_and_set_many(items, timeout=self.timeout)
        except ValueTooLarge as error:
            stats.incr("stored", len(items) - len(error.keys))
            stats.incr("too_large", len(error.keys))
            warn_too_large(error)
            markers = {key: (items[key][0], UNCACHEABLE) for key in error.keys if key in items}
            try:
                leasing.compare_and_set_many(markers, timeout=self.timeout)
            except BackendUnavailable as unavailable:
                self.warn("write", unavailable)
                if invalidating:
                    unsettled.remember(self.backend, markers)
            return
        except BackendUnavailable as error:
            self.warn("write", error)
            if invalidating:
                unsettled.remember(self.backend, items)
            return
        stats.incr("stored", len(stored))
        refused = len(items) - len(stored)
        if refused:
            stats.incr("fills_refused", refused)
            logger.debug(
                "drf-instcache: %d fill(s) refused: the entries changed while loading", refused
            )

    def lease(self, keys: Collection[str], ttl: float) -> dict[str, bytes]:
        """Put a fresh lease of ours over each key, whatever it holds (a writer's claim)."""
        leases = {key: new_lease() for key in keys}
        if leases:
            self.backend.set_many(leases, timeout=ttl)
        return leases

    # -- the read-through flow ------------------------------------------------------------
    def read(
        self, keys: Sequence[str], scope: str
    ) -> tuple[dict[str, bytes], dict[str, bytes] | None]:
        """Read ``keys``: what was found, and the leases this read already holds.

        When the last read of ``scope`` was cold and leases are on, the read puts a
        lease on every empty key in the same round trip (``get_many_claiming``), so
        :meth:`claim` need not call the backend for them; the leases are then returned
        (``{key: lease}``), else None. Raises ``BackendUnavailable`` as ``get_many``.
        """
        policy = self.lease_policy() if self.last_read_cold(scope) else None
        scope = f"{serial(self.backend)}:{scope}"  # a new backend (new settings) starts cold
        claimed: dict[str, bytes] | None = None
        if policy is None:
            found = self.backend.get_many(keys)
        else:
            lease = new_lease()
            found, won = get_many_claiming(self.backend, keys, lease, policy.ttl)  # type: ignore[arg-type]
            claimed = dict.fromkeys(won, lease)
        if len(_cold_scopes) >= _MAX_SCOPES:
            _cold_scopes.clear()
        _cold_scopes[scope] = 2 * len(found) <= len(keys)
        return found, claimed

    def last_read_cold(self, scope: str) -> bool:
        """Whether the last :meth:`read` of ``scope`` found at most half its keys (True
        before the first: a new backend starts cold)."""
        return _cold_scopes.get(f"{serial(self.backend)}:{scope}", True)

    def claim(
        self,
        empty: Sequence[str],
        corrupt: Mapping[str, bytes],
        others: Sequence[str],
        writable: bool = True,
        claimed: Mapping[str, bytes] | None = None,
    ) -> Claim:
        """Claim the keys a read is to fill; wait for those other readers are filling.

        ``empty`` keys held nothing, ``corrupt`` ones unreadable bytes, ``others``
        another reader's lease; ``claimed`` the leases :meth:`read` already put on
        empty keys (an empty key it did not win is another reader's: waited for). With
        leases, a fill is stored only if no write (and no other reader) took the key
        meanwhile; without, fills are plain writes.
        """
        policy = self.lease_policy() if writable else None
        leases: dict[str, bytes] = {}
        plain: set[str] = set()
        waiting = list(others)
        if writable:
            if policy is not None:
                try:
                    if claimed is None:
                        leases = self._claim_leases(empty, corrupt, policy)
                    elif corrupt:
                        leases = {**claimed, **self._claim_leases((), corrupt, policy)}
                    else:
                        leases = dict(claimed)
                except BackendUnavailable as error:
                    writable = False
                    self.warn("lease", error)
                waiting += [key for key in [*empty, *corrupt] if key not in leases]
            else:
                plain = {*empty, *corrupt}
        landed: dict[str, bytes] = {}
        if waiting and writable and policy is not None:
            landed = self.wait(waiting, policy)
        return Claim(self, writable, leases, plain, set(corrupt), landed)

    def _claim_leases(
        self, empty: Sequence[str], corrupt: Mapping[str, bytes], policy: LeasePolicy
    ) -> dict[str, bytes]:
        """Put a lease of ours on each key still empty (or still unreadable): key -> lease."""
        backend: LeasingBackend = self.backend  # type: ignore[assignment]
        lease = new_lease()  # one per read: a lease only has to be unique to its holder
        won: list[str] = []
        if empty:
            won += backend.add_many(dict.fromkeys(empty, lease), timeout=policy.ttl)
        if corrupt:
            won += backend.compare_and_set_many(
                {key: (raw, lease) for key, raw in corrupt.items()}, timeout=policy.ttl
            )
        return dict.fromkeys(won, lease)

    def wait(self, keys: Sequence[str], policy: LeasePolicy) -> dict[str, bytes]:
        """Wait (boundedly) for other readers' fills; return the values that came."""
        stats.incr("waited", len(keys))
        try:
            found = wait_for_fills(self.backend.get_many, keys, policy.wait)
        except BackendUnavailable as error:
            self.warn("read", error)
            return {}
        return {key: raw for key, raw in found.items() if not is_marker(raw)}


@dataclass
class Claim:
    """The keys one read is to fill, and the values other readers' fills brought."""

    store: Store
    writable: bool
    """False once the backend failed: nothing is written back."""
    leases: dict[str, bytes] = field(default_factory=dict)
    plain: set[str] = field(default_factory=set)
    """Keys filled by plain writes (backends without conditional writes)."""
    corrupt: set[str] = field(default_factory=set)
    landed: dict[str, bytes] = field(default_factory=dict)

    def write_back(self, filled: Mapping[str, bytes], gone: Sequence[str]) -> None:
        """Store what the read loaded once its transaction commits (never on rollback)."""
        if self.writable:
            transactions.unless_rolled_back(lambda: self._write_back(filled, gone))

    def _write_back(self, filled: Mapping[str, bytes], gone: Sequence[str]) -> None:
        store, leases = self.store, self.leases
        # A claimed key whose row is gone must not keep others waiting on its lease.
        emptied = [key for key in gone if key in leases or key in self.corrupt]
        if emptied:
            store.delete(emptied)
        if leases:
            store.fill({k: (leases[k], v) for k, v in filled.items() if k in leases})
        elif self.plain:
            store.store({k: v for k, v in filled.items() if k in self.plain})
