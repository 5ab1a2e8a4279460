"""The write path: bring one instance's entries up to date, and say what to update next.

:func:`update_instance` reloads a row, writes (over a lease of its own, when the backend
can do conditional writes) or deletes its entries in every version, and runs the
invalidator when the representation changed; :func:`forget_instance` does the same for
a row known to be deleted, without a load. :class:`~drf_instcache.core.strategy.BaseCache`
exposes both as methods.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from drf_instcache.backends.base import Backend
from drf_instcache.core import entries, unsettled
from drf_instcache.core.codecs import Codec
from drf_instcache.core.leases import is_marker
from drf_instcache.core.loading import load_one
from drf_instcache.core.namespaces import MODEL_FUNCTIONS
from drf_instcache.core.store import Store
from drf_instcache.exceptions import BackendUnavailable

Invalidation = tuple[str, Any, str]
"""``(model_name, pk, version)``: an instance to update next."""


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


def update_instance(
    cache: Strategy,
    model_name: str,
    pk: Any,
    instance: Any = None,
    version: str | None = None,
    update_only: bool = False,
) -> list[Invalidation]:
    """The work of :meth:`BaseCache.update_instance` (its docstring says what it does)."""
    versions = [cache.resolve_version(version)] if version else list(cache.versions)
    plans: list[tuple[str, dict[str, Callable[..., Any] | None]]] = []
    for each_version in versions:
        functions = {
            name: cache.model_function(model_name, each_version, name) for name in MODEL_FUNCTIONS
        }
        if any(function is not None for function in functions.values()):
            plans.append((each_version, functions))
    backend = cache.backend
    if not plans or backend is None:
        return []

    codec = cache.codec
    keys = {
        each_version: cache.key_for(each_version, model_name, pk)
        for each_version, functions in plans
        if functions["serializer"] is not None
    }
    store = cache.store(backend)
    store.settle()
    reachable = True
    try:
        current = backend.get_many(list(keys.values())) if keys else {}
    except BackendUnavailable as error:
        store.warn("update", error)
        if update_only:
            return []  # nothing can be known to be cached
        current, reachable = {}, False

    # With leases, our own lease replaces each entry BEFORE the row is loaded: a
    # reader's (or an earlier writer's) fill prepared from older data is then
    # refused, and our fill is refused in turn if a later write comes first.
    policy = store.lease_policy() if reachable else None
    leases: dict[str, bytes] = {}
    if policy is not None:
        claimed = [key for key in keys.values() if not (update_only and current.get(key) is None)]
        try:
            leases = store.lease(claimed, policy.ttl)
        except BackendUnavailable as error:
            store.warn("lease", error)
            unsettled.remember(backend, claimed)
            leases, reachable = {}, False

    to_set: dict[str, bytes] = {}
    to_fill: dict[str, tuple[bytes, bytes]] = {}
    to_delete: list[str] = []
    invalid: list[Invalidation] = []
    for each_version, functions in plans:
        serializer = functions["serializer"]
        loader = functions["loader"]
        invalidator = functions["invalidator"]
        key = keys.get(each_version)
        raw = current.get(key) if key is not None else None
        fresh = load_one(loader, pk) if loader is not None else instance
        changed = True
        if serializer is not None and key is not None:
            native = serializer(fresh) if fresh is not None else None
            if not native:
                to_delete.append(key)  # gone, or no longer cacheable
            elif update_only and raw is None:
                continue  # not cached: do not populate, do not cascade
            else:
                encoded = entries.encode(codec, native, cache.entry_stamp(model_name, each_version))
                changed = raw is None or is_marker(raw) or not entries.same(codec, raw, encoded)
                if key in leases:
                    to_fill[key] = (leases[key], encoded)  # our lease replaced it
                elif not reachable:
                    to_delete.append(key)  # cannot know what is there: drop it
                elif changed:
                    to_set[key] = encoded
        source = fresh if fresh is not None else instance
        if changed and source is not None and invalidator is not None:
            collect_invalidations(cache, invalidator(source), each_version, to_delete, invalid)

    writes = {*to_set, *to_fill}
    store.delete([key for key in to_delete if key not in writes], invalidating=True)
    store.fill(to_fill, invalidating=True)
    # The old value is stale and the new one does not fit: drop the entry.
    refused = store.store(to_set, invalidating=True)
    store.delete(refused, invalidating=True)
    return list(dict.fromkeys(invalid))


def forget_instance(
    cache: Strategy,
    model_name: str,
    pk: Any,
    instance: Any = None,
    version: str | None = None,
) -> list[Invalidation]:
    """The work of :meth:`BaseCache.forget_instance` (its docstring says what it does)."""
    versions = [cache.resolve_version(version)] if version else list(cache.versions)
    backend = cache.backend
    if backend is None:
        return []
    to_delete: list[str] = []
    invalid: list[Invalidation] = []
    for each_version in versions:
        functions = {
            name: cache.model_function(model_name, each_version, name) for name in MODEL_FUNCTIONS
        }
        if functions["serializer"] is not None:
            to_delete.append(cache.key_for(each_version, model_name, pk))
        invalidator = functions["invalidator"]
        if instance is not None and invalidator is not None:
            collect_invalidations(cache, invalidator(instance), each_version, to_delete, invalid)
    store = cache.store(backend)
    store.settle()
    store.delete(to_delete, invalidating=True)
    return list(dict.fromkeys(invalid))


def collect_invalidations(
    cache: Strategy,
    entries: Iterable[Any] | None,
    version: str,
    to_delete: list[str],
    invalid: list[Invalidation],
) -> None:
    """Sort an invalidator's entries into keys to delete now and instances to update."""
    for entry in entries or ():
        if isinstance(entry, str):
            to_delete.append(entry)
            continue
        related_model, related_pk, immediate = invalidation(entry)
        if immediate:
            to_delete.append(cache.key_for(version, related_model, related_pk))
        invalid.append((related_model, related_pk, version))


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
