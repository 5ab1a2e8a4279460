"""The write path: bring instances' entries up to date, and say what to update next.

:func:`update_instances` refreshes many instances of one model as one batch: one
``get_many`` for what is cached, one lease claim, one batch load (the model's
``loader_many`` when it has one), then one delete, one fill and one write for all of
them, so a cascade level costs the same few queries and round trips for 10 instances as
for 1000. :func:`update_instance` is the one-instance form the usage guide documents;
:func:`forget_instance` drops the entries of a row known to be deleted, without a load.
:class:`~drf_instcache.core.strategy.BaseCache` exposes all three as methods.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from drf_instcache.backends.base import Backend
from drf_instcache.core import entries, unsettled
from drf_instcache.core.codecs import Codec
from drf_instcache.core.leases import is_marker
from drf_instcache.core.loading import load_misses
from drf_instcache.core.namespaces import MODEL_FUNCTIONS
from drf_instcache.core.store import Store
from drf_instcache.exceptions import BackendUnavailable

Invalidation = tuple[str, Any, str]
"""``(model_name, pk, version)``: an instance to update next."""


class Follow(NamedTuple):
    """An instance an invalidator named; ``immediate`` ones were deleted already."""

    model_name: str
    pk: Any
    version: str
    immediate: bool


@dataclass
class Outcome:
    """What one batch did: what to update next, and whether the backend answered."""

    follow: list[Follow] = field(default_factory=list)
    unreachable: bool = False
    """The backend failed before anything was loaded: nothing was refreshed, and the
    batch's keys are deleted once it answers again. The caller records the refreshes."""
    refreshed: int = 0

    def invalidations(self) -> list[Invalidation]:
        return list(dict.fromkeys((f.model_name, f.pk, f.version) for f in self.follow))


class Strategy(Protocol):
    """What the write path asks of a cache class (:class:`BaseCache` provides it)."""

    versions: list[str]

    @property
    def backend(self) -> Backend | None: ...

    @property
    def codec(self) -> Codec: ...

    def resolve_version(self, version: str | None) -> str: ...

    def key_for(self, version: str, model_name: str, pk: Any) -> str: ...

    def model_function(
        self, model_name: str, version: str, func_name: str
    ) -> Callable[..., Any] | None: ...

    def entry_stamp(self, model_name: str, version: str) -> str: ...

    def store(self, backend: Backend) -> Store: ...


Functions = dict[str, Callable[..., Any] | None]


def _plans(cache: Strategy, model_name: str, version: str | None) -> list[tuple[str, Functions]]:
    """``(version, functions)`` for each version that knows the model."""
    versions = [cache.resolve_version(version)] if version else list(cache.versions)
    plans = []
    for each_version in versions:
        functions = {
            name: cache.model_function(model_name, each_version, name) for name in MODEL_FUNCTIONS
        }
        if any(function is not None for function in functions.values()):
            plans.append((each_version, functions))
    return plans


Replayer = Callable[[Any, str, Sequence[Any], "str | None", bool], None]
"""Given what a failed batch was to refresh, arranges for it to run once the backend
answers again (the invalidation layer installs one that replays it as a cascade)."""

_replayer: list[Replayer] = []


def set_replayer(replayer: Replayer) -> None:
    """Install how :func:`update_instance` defers what an unreachable backend refused."""
    _replayer[:] = [replayer]


def update_instance(
    cache: Strategy,
    model_name: str,
    pk: Any,
    instance: Any = None,
    version: str | None = None,
    update_only: bool = False,
) -> list[Invalidation]:
    """The work of :meth:`BaseCache.update_instance` (its docstring says what it does)."""
    given = {pk: instance} if instance is not None else None
    outcome = update_instances(cache, model_name, [pk], version, update_only, given)
    if outcome.unreachable:
        for replayer in _replayer:
            replayer(cache, model_name, [pk], version, update_only)
    return outcome.invalidations()


def update_instances(
    cache: Strategy,
    model_name: str,
    pks: Sequence[Any],
    version: str | None = None,
    update_only: bool = False,
    instances: Mapping[Any, Any] | None = None,
) -> Outcome:
    """Refresh the entries of ``pks`` (one model) in every version, as one batch.

    ``update_only`` refreshes only what is cached: an uncached entry is neither loaded
    nor written, and causes no cascade. ``instances`` are the callers' copies, used by
    the invalidator when a row can no longer be loaded.
    """
    plans = _plans(cache, model_name, version)
    backend = cache.backend
    pks = list(dict.fromkeys(pks))
    if not plans or backend is None or not pks:
        return Outcome()
    given = dict(instances or {})
    keys = {
        (each_version, pk): cache.key_for(each_version, model_name, pk)
        for each_version, functions in plans
        if functions["serializer"] is not None
        for pk in pks
    }
    store = cache.store(backend)
    store.settle()
    try:
        current = backend.get_many(list(keys.values())) if keys else {}
    except BackendUnavailable as error:
        store.warn("update", error)
        # Nothing loaded, nothing walked: the entries are dropped when the backend
        # answers again, and the caller records the refreshes to replay them then.
        unsettled.remember(backend, keys.values())
        return Outcome(unreachable=True)

    # Only what is to be written or compared: with update_only, a key not cached is left.
    wanted = {
        pair: key for pair, key in keys.items() if not (update_only and current.get(key) is None)
    }
    # With leases, our own lease replaces each entry BEFORE the rows are loaded: a
    # reader's (or an earlier writer's) fill prepared from older data is then refused,
    # and our fill is refused in turn if a later write comes first.
    policy = store.lease_policy()
    leases: dict[str, bytes] = {}
    if policy is not None and wanted:
        try:
            leases = store.lease(list(wanted.values()), policy.ttl)
        except BackendUnavailable as error:
            store.warn("lease", error)
            unsettled.remember(backend, keys.values())
            return Outcome(unreachable=True)

    outcome = Outcome()
    batch = _Batch(cache, store, leases)
    for each_version, functions in plans:
        serializer, invalidator = functions["serializer"], functions["invalidator"]
        # Loaded even when update_only: a row that is gone still cascades.
        fresh = _load(cache, model_name, each_version, functions, pks, given)
        for pk in pks:
            key = keys.get((each_version, pk))
            obj = fresh.get(pk)
            changed = True
            if serializer is not None and key is not None:
                raw = current.get(key)
                native = serializer(obj) if obj is not None else None
                if native and update_only and raw is None:
                    continue  # not cached: do not populate, do not cascade
                changed = batch.write(key, raw, native, model_name, each_version)
                outcome.refreshed += 1
            source = obj if obj is not None else given.get(pk)
            if changed and source is not None and invalidator is not None:
                batch.follow(invalidator(source), each_version, outcome.follow)
    batch.flush()
    outcome.follow = list(dict.fromkeys(outcome.follow))
    return outcome


def _load(
    cache: Strategy,
    model_name: str,
    version: str,
    functions: Functions,
    pks: Sequence[Any],
    given: Mapping[Any, Any],
) -> dict[Any, Any]:
    """pk -> fresh instance (None when gone): one batch load when the model allows."""
    if functions["loader"] is None:
        return {pk: given.get(pk) for pk in pks}
    specs = [(cache.key_for(version, model_name, pk), pk, None) for pk in pks]
    loaded = load_misses(cache, model_name, version, specs)
    return {pk: loaded.get(key) for key, pk, _ in specs}


class _Batch:
    """The writes and deletes one batch collects, sent in one round trip each."""

    def __init__(self, cache: Strategy, store: Store, leases: dict[str, bytes]) -> None:
        self.cache, self.store, self.leases = cache, store, leases
        self.to_set: dict[str, bytes] = {}
        self.to_fill: dict[str, tuple[bytes, bytes]] = {}
        self.to_delete: list[str] = []

    def write(
        self, key: str, raw: bytes | None, native: Any, model_name: str, version: str
    ) -> bool:
        """Queue the new entry of ``key`` (or its delete); return whether it changed."""
        if not native:
            self.to_delete.append(key)  # gone, or no longer cacheable
            return True
        codec = self.cache.codec
        encoded = entries.encode(codec, native, self.cache.entry_stamp(model_name, version))
        changed = raw is None or is_marker(raw) or not entries.same(codec, raw, encoded)
        if key in self.leases:
            self.to_fill[key] = (self.leases[key], encoded)  # our lease replaced it
        elif changed:
            self.to_set[key] = encoded
        return changed

    def follow(self, named: Iterable[Any] | None, version: str, into: list[Follow]) -> None:
        for entry in named or ():
            if isinstance(entry, str):
                self.to_delete.append(entry)
                continue
            related_model, related_pk, immediate = invalidation(entry)
            if immediate:
                self.to_delete.append(self.cache.key_for(version, related_model, related_pk))
            into.append(Follow(related_model, related_pk, version, immediate))

    def flush(self) -> None:
        store = self.store
        writes = {*self.to_set, *self.to_fill}
        store.delete([key for key in self.to_delete if key not in writes], invalidating=True)
        store.fill(self.to_fill, invalidating=True)
        # The old value is stale and the new one does not fit: drop the entry.
        refused = store.store(self.to_set, invalidating=True)
        store.delete(refused, invalidating=True)


def forget_instance(
    cache: Strategy,
    model_name: str,
    pk: Any,
    instance: Any = None,
    version: str | None = None,
) -> list[Invalidation]:
    """The work of :meth:`BaseCache.forget_instance` (its docstring says what it does)."""
    return forget_instances(cache, model_name, {pk: instance}, version).invalidations()


def forget_instances(
    cache: Strategy, model_name: str, instances: Mapping[Any, Any], version: str | None = None
) -> Outcome:
    """Delete the entries of deleted rows (pk -> the instance as deleted), in one call."""
    backend = cache.backend
    if backend is None or not instances:
        return Outcome()
    store = cache.store(backend)
    batch = _Batch(cache, store, {})
    outcome = Outcome()
    for each_version, functions in _plans(cache, model_name, version):
        invalidator = functions["invalidator"]
        for pk, instance in instances.items():
            if functions["serializer"] is not None:
                batch.to_delete.append(cache.key_for(each_version, model_name, pk))
            if instance is not None and invalidator is not None:
                batch.follow(invalidator(instance), each_version, outcome.follow)
    store.settle()
    batch.flush()
    outcome.follow = list(dict.fromkeys(outcome.follow))
    return outcome


def drop_instances(
    cache: Strategy, model_name: str, pks: Sequence[Any], version: str | None = None
) -> Outcome:
    """Delete the entries of ``pks`` in one call, loading nothing (the drop policy)."""
    backend = cache.backend
    if backend is None or not pks:
        return Outcome()
    keys = [
        cache.key_for(each_version, model_name, pk)
        for each_version, functions in _plans(cache, model_name, version)
        if functions["serializer"] is not None
        for pk in pks
    ]
    store = cache.store(backend)
    store.settle()
    store.delete(keys, invalidating=True)
    return Outcome(refreshed=len(keys))


def invalidation(entry: Any) -> tuple[str, Any, bool]:
    """An invalidator's non-string entry as ``(model_name, pk, immediate)``."""
    try:
        related_model, related_pk, immediate = entry
    except (TypeError, ValueError):
        raise TypeError(
            "an invalidator must return raw key strings or (model_name, pk, immediate) "
            f"triples, not {entry!r}"
        ) from None
    return related_model, related_pk, bool(immediate)
