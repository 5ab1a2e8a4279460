"""The rendered read-through: a batch of rendered entries in one round trip.

:func:`fetch` reads the entries of a page with one ``get_many``, renders the misses with
one caller-supplied call (one database batch) and stores them with one write, through
the core's :class:`~drf_instcache.core.store.Store` (leases, waits, error policy), so a
slow reader cannot cache a row that changed under it. A failing backend is logged and
the page is rendered from the database.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any, cast

from drf_instcache.backends.base import Backend
from drf_instcache.core import counters as stats
from drf_instcache.core import transactions
from drf_instcache.core.leases import is_lease, is_marker
from drf_instcache.core.store import Store
from drf_instcache.core.strategy import BaseCache
from drf_instcache.exceptions import BackendUnavailable
from drf_instcache.fastpath.plans import Render, RenderedPlan

logger = logging.getLogger(__name__)


def warn_unavailable(operation: str, error: BackendUnavailable) -> None:
    stats.incr("errors")
    consequence = {
        "read": "rendering from the database",
        "lease": "rendering without caching",
        "invalidation": "the variant index is deleted once the cache answers again",
    }.get(operation, "continuing without the cache")
    # Counted; the outage itself is logged once (drf_instcache.core.outage).
    logger.debug("drf-instcache: rendered cache %s failed, %s: %s", operation, consequence, error)


@dataclass(frozen=True)
class Preread:
    """Entries already read in an earlier round trip of the same request: their keys
    (``{key: pk}``, in order), and the values found (absent keys were misses)."""

    keys: dict[str, str]
    found: Mapping[str, bytes]
    claimed: dict[str, bytes] | None = None
    """The leases that read put on empty keys (``{key: lease}``), if it put any."""


def settle(core: BaseCache) -> bool:
    """Apply pending invalidations before a read; True when some were (or still are)."""
    backend = core.backend
    return backend is not None and Store(backend, core.timeout, warn_unavailable).settle()


def read_ahead_keys(plan: RenderedPlan, pks: Iterable[Any]) -> dict[str, str]:
    """``{key: pk}`` of the entries of ``pks``, for reading ahead; empty for plans that
    vary per request (their keys need the variant's token first)."""
    if plan.variants is not None:
        return {}
    return _keys_of(plan, list(dict.fromkeys(map(str, pks))), None)


def fetch(
    core: BaseCache,
    plan: RenderedPlan,
    pks: Sequence[Any],
    variant: str,
    render: Render,
    preread: Preread | None = None,
) -> dict[str, bytes | memoryview]:
    """The JSON of each instance in ``pks`` (``{str(pk): bytes}``), cached or rendered.

    One ``get_many`` reads every entry (none when ``preread`` already holds them all);
    the misses are rendered with ONE call to ``render`` and stored with one write. Rows
    that no longer exist are absent.
    """
    ids = list(dict.fromkeys(map(str, pks)))
    backend = core.backend
    if not ids:
        return {}
    if backend is None or transactions.dirty():
        return dict(render(ids))
    store = Store(backend, core.timeout, warn_unavailable)
    if store.settle():  # read before failed invalidations were applied: read again
        if preread is not None and preread.claimed:
            store.delete(list(preread.claimed))  # its leases too, or the read waits on them
        preread = None
    try:
        token = _token(plan, backend, variant)
    except BackendUnavailable as error:
        warn_unavailable("read", error)
        stats.incr("fallbacks", len(ids), model=plan.model_name)
        return dict(render(ids))
    if plan.varies and token is None:  # too many variants: render, store nothing
        stats.incr("misses", len(ids), model=plan.model_name)
        return dict(render(ids))
    try:
        keys, raw_values, claimed = _read(plan, store, ids, variant, token, preread)
    except BackendUnavailable as error:
        warn_unavailable("read", error)
        stats.incr("fallbacks", len(ids), model=plan.model_name)
        stats.incr("misses", len(ids), model=plan.model_name)
        return dict(render(ids))
    return _Fill(core, plan, store, keys).run(raw_values, render, claimed)


def _token(plan: RenderedPlan, backend: Backend, variant: str) -> str | None:
    if plan.variants is None:
        return None
    return plan.variants.token(backend, variant)


def _read(
    plan: RenderedPlan,
    store: Store,
    ids: list[str],
    variant: str,
    token: str | None,
    preread: Preread | None = None,
) -> tuple[dict[str, str], Mapping[str, bytes], dict[str, bytes] | None]:
    """One read of the entries (and, for varying plans, the variant index): ``{key: pk}``,
    what was found, and the leases the read put on empty keys (None: it put none)."""
    backend = store.backend
    if plan.variants is None and preread is not None:
        same = len(preread.keys) == len(ids) and list(preread.keys.values()) == ids
        keys = preread.keys if same else _keys_of(plan, ids, token)
        claimed = preread.claimed
        if claimed and not same:  # leases on keys that left the page: released
            left = [key for key in claimed if key not in keys]
            if left:
                store.delete(left)
            claimed = {key: lease for key, lease in claimed.items() if key in keys}
        unread = [] if same else [key for key in keys if key not in preread.keys]
        if not unread:
            return keys, preread.found, claimed
        return keys, {**preread.found, **backend.get_many(unread)}, claimed
    keys = _keys_of(plan, ids, token)
    if plan.variants is None or token is None:
        found, claimed = store.read(list(keys), f"{plan.base}:{len(ids) > 1}")
        return keys, found, claimed
    index_key = plan.variants.key
    raw_values = backend.get_many([*keys, index_key])
    if plan.variants.confirms(backend, variant, token, raw_values.get(index_key)):
        return keys, raw_values, None
    # The index changed under this process (lost, or re-registered): look again, once.
    token = plan.variants.token(backend, variant)
    if token is None:
        return {plan.key(pk): pk for pk in ids}, {}, None
    keys = _keys_of(plan, ids, token)
    return keys, backend.get_many(list(keys)), None


def _keys_of(plan: RenderedPlan, ids: list[str], token: str | None) -> dict[str, str]:
    """``{key: pk}`` for every id, in order (built in one pass: a list reads 100 of them)."""
    prefix = plan.prefix if token is None else f"{plan.base}@{token}:"
    return dict(zip([prefix + pk for pk in ids], ids, strict=True))


class _Fill:
    """Sort what one read found; render and store the misses (over leases if possible)."""

    def __init__(self, core: BaseCache, plan: RenderedPlan, store: Store, keys) -> None:
        self.core = core
        self.plan = plan
        self.store = store
        self.keys: dict[str, str] = keys  # key -> pk

    def run(
        self,
        raw_values: Mapping[str, bytes],
        render: Render,
        claimed: dict[str, bytes] | None = None,
    ) -> dict[str, Any]:
        """The entries' JSON by pk; ``claimed``: the leases the read already holds."""
        found = self._all_hits(raw_values)
        if found is not None:
            return found
        return self._sort_and_fill(raw_values, render, claimed)

    def _all_hits(self, raw_values: Mapping[str, bytes]) -> dict[str, Any] | None:
        """Every entry present and ours (the common case), checked in one pass; else None.

        A warm page of 100 is read on every request, so this avoids the per-key branching
        of :meth:`_sort_and_fill`, which handles misses, leases and foreign bytes.
        """
        stamp = self.plan.stamp
        found = list(map(raw_values.get, self.keys))
        if None in found:
            return None
        values = cast("list[bytes]", found)
        try:  # map() over C methods: no Python-level loop per entry
            ours = all(map(bytes.startswith, values, repeat(stamp))) and all(
                map(bytes.endswith, values, repeat(b"}"))
            )
        except TypeError:  # not bytes: let the careful pass sort it out
            return None
        if not ours:
            return None
        stats.incr("hits", len(values), model=self.plan.model_name)
        return dict(zip(self.keys.values(), map(self.plan.cut_stamp, values), strict=True))

    def _sort_and_fill(
        self,
        raw_values: Mapping[str, bytes],
        render: Render,
        claimed: dict[str, bytes] | None,
    ) -> dict[str, Any]:
        plan = self.plan
        found: dict[str, Any] = {}
        empty: list[str] = []
        corrupt: dict[str, bytes] = {}
        leased_by_others: list[str] = []
        stamp, skip = plan.stamp, len(plan.stamp)
        for key, pk in self.keys.items():
            raw = raw_values.get(key)
            if raw is None:
                empty.append(key)
            elif raw.startswith(stamp) and raw.endswith(b"}"):  # the hot path: a hit
                found[pk] = memoryview(raw)[skip:]
            elif is_lease(raw):
                leased_by_others.append(key)
            elif not is_marker(raw):  # too large to cache: render it, store nothing
                corrupt[key] = raw

        claim = self.store.claim(empty, corrupt, leased_by_others, claimed=claimed)
        for key, raw in claim.landed.items():
            payload = plan.payload(raw)
            if payload is not None:
                found[self.keys[key]] = payload

        missing = [pk for key, pk in self.keys.items() if pk not in found]
        stats.incr("hits", len(found), model=plan.model_name)
        stats.incr("misses", len(missing), model=plan.model_name)
        rendered = dict(render(missing)) if missing else {}
        stats.incr("loaded", len(rendered))
        key_of = {pk: key for key, pk in self.keys.items()}
        filled = {key_of[pk]: stamp + body for pk, body in rendered.items()}
        claim.write_back(filled, [key_of[pk] for pk in missing if pk not in rendered])
        found.update(rendered)
        return found
