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

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from django.db.models import Model

from drf_instcache.core.namespaces import RENDERED_NAMESPACE
from drf_instcache.exceptions import ImproperlyConfigured
from drf_instcache.fastpath.analysis import analyze
from drf_instcache.fastpath.dependencies import Analysis
from drf_instcache.fastpath.variants import VariantIndex

__all__ = ["RenderedPlan", "plan_for_view", "view_model"]


KEY_NAMESPACE = RENDERED_NAMESPACE
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


# -- reading ------------------------------------------------------------------------------


# -- invalidation -------------------------------------------------------------------------
