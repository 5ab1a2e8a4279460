"""Rendered entries: a view serializer's output per instance, cached as JSON bytes.

This is the fast path's storage layer (the views are in :mod:`drf_instcache.fastview`,
the JSON in :mod:`drf_instcache.fastjson`, the invalidation receivers in
:mod:`drf_instcache.rendered_signals`).

A :class:`RenderedPlan` describes what one serializer caches for one model: its key
(``dir:<version>:<serializer path>:<model label>:<pk>``, plus a variant token when the
output depends on the request, see :mod:`drf_instcache.variants`), the *stamp* leading
every value (a fingerprint of the serializer, so bytes written by a different serializer
definition during a rolling deploy are refilled, not served), and the dependencies that
say which writes make an entry stale.

:func:`fetch` reads a batch of entries with one ``get_many``, renders the misses with
a caller-supplied function (one database batch) and stores them with one write, over
the core's leases when the backend has conditional writes, so a slow reader cannot cache
a row that changed under it. A failing backend is logged and the page is rendered from
the database, as the instance cache does.

Plans are registered with :func:`connect` (a view class), which also connects the
signal receivers, so writes from any process (a shell, a worker) drop the entries.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from operator import itemgetter
from typing import Any, cast

from django.db.models import Model

from drf_instcache.backends.base import Backend
from drf_instcache.core import counters as stats
from drf_instcache.core import transactions
from drf_instcache.core.leases import is_lease, is_marker
from drf_instcache.core.store import Store
from drf_instcache.core.strategy import BaseCache
from drf_instcache.dependencies import Analysis, Dependency, analyze
from drf_instcache.exceptions import BackendUnavailable, ImproperlyConfigured
from drf_instcache.variants import VariantIndex

__all__ = ["RenderedPlan", "connect", "fetch", "invalidate", "plan_for_view"]

logger = logging.getLogger("drf_instcache.rendered")

KEY_NAMESPACE = "dir"
"""First part of every rendered key ("drf-instcache rendered"); instance keys use ``dic``."""

DEFAULT_VERSION = "1"

Render = Callable[[list[str]], dict[str, bytes]]
"""Renders the given primary keys (as strings): ``{pk: JSON bytes}``, gone rows absent."""


# -- plans -------------------------------------------------------------------------------
@dataclass(eq=False)
class RenderedPlan:
    """What one serializer caches for one model, and what makes it stale."""

    serializer_class: type
    model: type[Model]
    version: str
    analysis: Analysis
    keyed: bool = False
    """The view declares ``rendered_context_key``: its value is part of the variant."""
    views: list[type] = field(default_factory=list)
    connected: bool = False
    """Registered for invalidation (:func:`connect`)."""

    def __post_init__(self) -> None:
        cls = self.serializer_class
        self.identity = f"{cls.__module__}.{cls.__qualname__}"
        self.base = f"{KEY_NAMESPACE}:{self.version}:{self.identity}:{self.model._meta.label_lower}"
        self.prefix = self.base + ":"
        self.stamp = b"R" + self.analysis.fingerprint.encode() + b":"
        self.cut_stamp = itemgetter(slice(len(self.stamp), None))
        """``value -> value[len(stamp):]`` as one C call (a page applies it 100 times)."""
        self.varies = self.analysis.hyperlinked or self.keyed
        self.variants = (
            VariantIndex(self.base + (":keyed" if self.keyed else "")) if (self.varies) else None
        )

    @property
    def model_name(self) -> str:
        return self.model.__name__

    def key(self, pk: str, token: str | None = None) -> str:
        """The key of one entry (``token``: the variant's, for plans that vary)."""
        if token is None:
            return self.prefix + pk
        return f"{self.base}@{token}:{pk}"

    def payload(self, raw: bytes) -> memoryview | None:
        """The JSON in a cached value, or None when the value is not one of ours.

        Ours means led by this plan's stamp (same serializer definition) and a complete
        JSON object; anything else (another deploy's entry, foreign bytes) is a miss.
        """
        if not (raw.startswith(self.stamp) and raw.endswith(b"}")):
            return None
        return memoryview(raw)[len(self.stamp) :]

    def problems(self) -> list[str]:
        """Why this plan must not be served (empty when it may)."""
        analysis = self.analysis
        found = [
            f"{finding.where}: {finding.detail}"
            for finding in [*analysis.bad_declarations, *analysis.errors]
        ]
        if not self.keyed:
            found += [
                f"{finding.where}: {finding.detail}, so its output may differ per request; "
                "declare rendered_context_key(self, request) on the view"
                for finding in self.analysis.context_reads
            ]
        return found

    def __repr__(self) -> str:
        return f"<RenderedPlan {self.base}{' (varies)' if self.varies else ''}>"


def view_model(view_class: type, serializer_class: type) -> type[Model]:
    """The model a view renders: its queryset's, else its serializer's ``Meta.model``."""
    queryset = getattr(view_class, "queryset", None)
    model = getattr(queryset, "model", None)
    if model is None:
        model = getattr(getattr(serializer_class, "Meta", None), "model", None)
    if model is None:
        raise ImproperlyConfigured(
            f"{view_class.__name__}: cache_rendered needs a queryset attribute or a "
            "ModelSerializer to know which model it renders"
        )
    return model


def _declared(view_class: type) -> dict[str, tuple[str, ...]]:
    value = getattr(view_class, "rendered_dependencies", None) or {}
    if not isinstance(value, Mapping):
        raise ImproperlyConfigured(
            f"{view_class.__name__}.rendered_dependencies must map field names to lists of "
            f"ORM paths, e.g. {{'choice_count': ['choices']}}, not {value!r}"
        )
    return {
        name: tuple([paths] if isinstance(paths, str) else paths) for name, paths in value.items()
    }


_lock = threading.RLock()
_plans: dict[tuple[Any, ...], RenderedPlan] = {}
_view_plans: dict[tuple[type, type], RenderedPlan] = {}


def plan_for_view(view_class: type, serializer_class: type | None = None) -> RenderedPlan:
    """The plan of ``view_class`` rendering with ``serializer_class`` (default: its own).

    Plans are built once per process; views sharing a serializer, model, version and
    context keying share one plan (and its entries).
    """
    serializer_class = serializer_class or getattr(view_class, "serializer_class", None)
    if serializer_class is None:
        raise ImproperlyConfigured(
            f"{view_class.__name__}: cache_rendered needs serializer_class (or pass the "
            "serializer class to connect())"
        )
    with _lock:
        cached = _view_plans.get((view_class, serializer_class))
        if cached is not None:
            return cached
        model = view_model(view_class, serializer_class)
        version = str(getattr(view_class, "rendered_version", None) or DEFAULT_VERSION)
        keyed = getattr(view_class, "rendered_context_key", None) is not None
        declared = _declared(view_class)
        identity = (serializer_class, model, version, keyed, tuple(sorted(declared.items())))
        plan = _plans.get(identity)
        if plan is None:
            analysis = analyze(serializer_class, model, declared)
            plan = _plans[identity] = RenderedPlan(
                serializer_class, model, version, analysis, keyed
            )
        if view_class not in plan.views:
            plan.views.append(view_class)
        _view_plans[(view_class, serializer_class)] = plan
        return plan


# -- the registry of what to invalidate ---------------------------------------------------
@dataclass
class Registry:
    """Connected plans, indexed by the models whose writes concern them."""

    own: dict[type[Model], list[RenderedPlan]] = field(default_factory=dict)
    dependents: dict[type[Model], list[tuple[RenderedPlan, Dependency]]] = field(
        default_factory=dict
    )
    m2m: dict[type[Model], list[tuple[RenderedPlan, Dependency, int]]] = field(default_factory=dict)

    def add(self, plan: RenderedPlan) -> None:
        _append(self.own, plan.model, plan)
        for dependency in plan.analysis.dependencies:
            _append(self.dependents, dependency.target, (plan, dependency))
            for index, step in enumerate(dependency.steps):
                if step.through is not None:
                    _append(self.m2m, step.through, (plan, dependency, index))

    def plans(self) -> list[RenderedPlan]:
        return list(dict.fromkeys(plan for plans in self.own.values() for plan in plans))


def _append(mapping: dict[Any, list[Any]], key: Any, value: Any) -> None:
    values = mapping.setdefault(key, [])
    if value not in values:
        values.append(value)


registry = Registry()


def connect(*view_classes: type, serializer_class: type | None = None) -> list[RenderedPlan]:
    """Keep the rendered entries of these views current, whatever process writes.

    Call it where the project connects its signals (an ``AppConfig.ready()``), so a
    shell, a management command or a worker invalidates entries too, not only the web
    processes that served them. Connecting twice changes nothing. Returns the plans.
    """
    from drf_instcache import rendered_signals

    plans = []
    for view_class in view_classes:
        plan = plan_for_view(view_class, serializer_class)
        if not plan.connected:
            with _lock:
                if not plan.connected:
                    registry.add(plan)
                    rendered_signals.listen(plan)
                    plan.connected = True
        plans.append(plan)
    return plans


def is_connected(view_class: type) -> bool:
    """Whether some plan of ``view_class`` is registered for invalidation."""
    return any(view_class in plan.views for plan in registry.plans())


# -- reading ------------------------------------------------------------------------------
def _warn_unavailable(operation: str, error: BackendUnavailable) -> None:
    stats.incr("errors")
    consequence = {
        "read": "rendering from the database",
        "lease": "rendering without caching",
        "invalidation": "the variant index is deleted once the cache answers again",
    }.get(operation, "continuing without the cache")
    logger.warning("drf-instcache: rendered cache %s failed, %s: %s", operation, consequence, error)


@dataclass(frozen=True)
class Preread:
    """Entries already read in an earlier round trip of the same request: their keys
    (``{key: pk}``, in order), and the values found (absent keys were misses)."""

    keys: dict[str, str]
    found: Mapping[str, bytes]


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
    try:
        token = _token(plan, backend, variant)
    except BackendUnavailable as error:
        _warn_unavailable("read", error)
        stats.incr("fallbacks", len(ids), model=plan.model_name)
        return dict(render(ids))
    if plan.varies and token is None:  # too many variants: render, store nothing
        stats.incr("misses", len(ids), model=plan.model_name)
        return dict(render(ids))
    try:
        keys, raw_values = _read(plan, backend, ids, variant, token, preread)
    except BackendUnavailable as error:
        _warn_unavailable("read", error)
        stats.incr("fallbacks", len(ids), model=plan.model_name)
        stats.incr("misses", len(ids), model=plan.model_name)
        return dict(render(ids))
    return _Fill(core, plan, backend, keys).run(raw_values, render)


def _token(plan: RenderedPlan, backend: Backend, variant: str) -> str | None:
    if plan.variants is None:
        return None
    return plan.variants.token(backend, variant)


def _read(
    plan: RenderedPlan,
    backend: Backend,
    ids: list[str],
    variant: str,
    token: str | None,
    preread: Preread | None = None,
) -> tuple[dict[str, str], Mapping[str, bytes]]:
    """One ``get_many`` of the entries (and, for varying plans, the variant index)."""
    if plan.variants is None and preread is not None:
        same = len(preread.keys) == len(ids) and list(preread.keys.values()) == ids
        keys = preread.keys if same else _keys_of(plan, ids, token)
        unread = [] if same else [key for key in keys if key not in preread.keys]
        if not unread:
            return keys, preread.found
        return keys, {**preread.found, **backend.get_many(unread)}
    keys = _keys_of(plan, ids, token)
    if plan.variants is None or token is None:
        return keys, backend.get_many(list(keys))
    index_key = plan.variants.key
    raw_values = backend.get_many([*keys, index_key])
    if plan.variants.confirms(backend, variant, token, raw_values.get(index_key)):
        return keys, raw_values
    # The index changed under this process (lost, or re-registered): look again, once.
    token = plan.variants.token(backend, variant)
    if token is None:
        return {plan.key(pk): pk for pk in ids}, {}
    keys = _keys_of(plan, ids, token)
    return keys, backend.get_many(list(keys))


def _keys_of(plan: RenderedPlan, ids: list[str], token: str | None) -> dict[str, str]:
    """``{key: pk}`` for every id, in order (built in one pass: a list reads 100 of them)."""
    prefix = plan.prefix if token is None else f"{plan.base}@{token}:"
    return dict(zip([prefix + pk for pk in ids], ids, strict=True))


class _Fill:
    """Sort what one read found; render and store the misses (over leases if possible)."""

    def __init__(self, core: BaseCache, plan: RenderedPlan, backend: Backend, keys) -> None:
        self.core = core
        self.plan = plan
        self.backend = backend
        self.keys: dict[str, str] = keys  # key -> pk

    def run(self, raw_values: Mapping[str, bytes], render: Render) -> dict[str, Any]:
        found = self._all_hits(raw_values)
        if found is not None:
            return found
        return self._sort_and_fill(raw_values, render)

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

    def _sort_and_fill(self, raw_values: Mapping[str, bytes], render: Render) -> dict[str, Any]:
        plan, core, backend = self.plan, self.core, self.backend
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

        store = Store(backend, core.timeout, _warn_unavailable)
        claim = store.claim(empty, corrupt, leased_by_others)
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


# -- invalidation -------------------------------------------------------------------------
def entry_keys(
    backend: Backend, stale: Mapping[RenderedPlan, Iterable[Any]]
) -> tuple[list[str], list[str]]:
    """The keys of the stale entries, and the variant indexes that could not be read.

    Plans that vary are looked up in their index (one ``get_many`` for all of them);
    every token listed gets its key deleted.
    """
    keys: list[str] = []
    varying = [plan for plan in stale if plan.variants is not None]
    indexes: dict[str, bytes] = {}
    unreadable: list[str] = []
    if varying:
        index_keys = [plan.variants.key for plan in varying]  # type: ignore[union-attr]
        try:
            indexes = backend.get_many(index_keys)
        except BackendUnavailable as error:
            _warn_unavailable("invalidation", error)
            unreadable = index_keys
    for plan, pks in stale.items():
        ids = [str(pk) for pk in pks]
        if plan.variants is None:
            keys.extend(plan.key(pk) for pk in ids)
            continue
        if plan.variants.key in unreadable:
            continue
        for token in plan.variants.tokens_in(indexes.get(plan.variants.key)):
            keys.extend(plan.key(pk, token) for pk in ids)
    return keys, unreadable


def invalidate(core: BaseCache, stale: Mapping[RenderedPlan, Iterable[Any]]) -> int:
    """Delete the rendered entries of ``{plan: pks}`` in every variant; return the count.

    When a varying plan's index cannot be read, the index itself is deleted (now, or as
    soon as the backend answers again): its variants then get new tokens and the old
    entries are never read again.
    """
    backend = core.backend
    stale = {plan: list(pks) for plan, pks in stale.items() if pks}
    if backend is None or not stale:
        return 0
    keys, unreadable = entry_keys(backend, stale)
    _delete_stale(core, backend, [*keys, *unreadable])
    return len(keys)


def _delete_stale(core: BaseCache, backend: Backend, keys: list[str]) -> None:
    """Delete keys that may hold stale data; the core retries them after an outage."""
    if keys:
        core.store(backend).delete(keys, invalidating=True)
