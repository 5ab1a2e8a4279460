"""System checks of the fast path, for every view with ``cache_rendered = True`` found in
the URL conf or connected with :func:`drf_instcache.rendered.connect`.

* ``drf_instcache.E020``: a ``rendered_dependencies`` path names no relation;
* ``drf_instcache.E021``: a field (or the serializer) reads the serializer context, so
  its output may differ per request, and the view declares no ``rendered_context_key``
  (the error names the field; its reads are served by plain DRF until it is fixed);
* ``drf_instcache.W023``: orjson (the ``[fast]`` extra) is not installed, so fast-path
  views encode with DRF's own JSON encoder: the same bytes, several times slower;
* ``drf_instcache.W020``: a field whose dependencies cannot be read from its declaration
  has none declared, so writes to the rows it reads may leave entries stale;
* ``drf_instcache.W021``: the view was not connected at start-up, so processes that
  write without serving it (a shell, a worker) will not drop its entries;
* ``drf_instcache.W022``: the fast path cannot cache this view (no model or serializer,
  a queryset that is not a QuerySet, a serializer that needs a request...): plain DRF
  serves its reads.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from django.core.checks import CheckMessage, Error, Warning
from django.db.models import Manager, QuerySet
from django.urls import get_resolver

from drf_instcache.drf.views import CachedViewMixin
from drf_instcache.exceptions import ImproperlyConfigured
from drf_instcache.invalidation import rendered
from drf_instcache.ops.discovery import walk

HINT_CONTEXT = (
    "Define rendered_context_key(self, request) on the view, returning what the output "
    "depends on (e.g. str(request.user.pk), or a coarser role): it becomes part of the "
    "cache key. Or set cache_rendered = False."
)
HINT_OPAQUE = (
    "Declare the rows it reads: rendered_dependencies = {field: ['orm__path', ...]} on "
    "the view or in the serializer's Meta ([] when it reads only the instance's own row)."
)
HINT_PLAIN = (
    "Its reads are as without the cache. Give it a QuerySet and a ModelSerializer "
    "rendering instance by instance to cache them, or set cache_rendered = False."
)
HINT_CONNECT = (
    "Call drf_instcache.rendered.connect(ViewClass, ...) in an AppConfig.ready(), next to "
    "drf_instcache.signals.connect()."
)


def _label(view_class: type) -> str:
    return f"{view_class.__module__}.{view_class.__qualname__}"


def fast_views_in_urlconf(urlconf: str | None = None) -> list[type]:
    """Views of the URL conf with ``cache_rendered = True`` (each once)."""

    found: dict[type, None] = {}
    for _, callback in walk(get_resolver(urlconf).url_patterns):
        view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
        initkwargs = getattr(callback, "initkwargs", None) or {}
        if (
            isinstance(view_class, type)
            and issubclass(view_class, CachedViewMixin)
            and initkwargs.get("cache_rendered", view_class.cache_rendered)
        ):
            found[view_class] = None
    return list(found)


def _served_plainly(view_class: type, reason: str) -> Warning:
    return Warning(
        f"{view_class.__name__} is served by plain DRF, not from rendered entries: {reason}.",
        hint=HINT_PLAIN,
        obj=_label(view_class),
        id="drf_instcache.W022",
    )


def _static_queryset_problem(view_class: type) -> str | None:
    queryset = getattr(view_class, "queryset", None)
    if queryset is None or isinstance(queryset, QuerySet | Manager):
        return None
    return f"its queryset is a {type(queryset).__name__}, not a QuerySet"


def check_view(view_class: type, connected: bool | None = None) -> list[CheckMessage]:
    """The fast path's check messages for one view class."""
    label = _label(view_class)
    problem = _static_queryset_problem(view_class)
    if problem is not None:
        return [_served_plainly(view_class, problem)]
    try:
        plan = rendered.plan_for_view(view_class)
    except ImproperlyConfigured as error:
        return [_served_plainly(view_class, str(error))]
    analysis = plan.analysis
    messages: list[CheckMessage] = [
        Error(
            f"{view_class.__name__} cannot cache rendered output: {finding.where}: "
            f"{finding.detail}.",
            hint="Fix the declaration, or set cache_rendered = False.",
            obj=label,
            id="drf_instcache.E020",
        )
        for finding in analysis.bad_declarations
    ]
    messages += [
        _served_plainly(view_class, f"{finding.where}: {finding.detail}")
        for finding in analysis.errors
    ]
    if not plan.keyed:
        messages += [
            Error(
                f"{view_class.__name__}: field {finding.where} depends on the request "
                f"({finding.detail}); its cached output would be served to every user.",
                hint=HINT_CONTEXT,
                obj=label,
                id="drf_instcache.E021",
            )
            for finding in analysis.context_reads
        ]
    messages += [
        Warning(
            f"{view_class.__name__}: field {finding.where}: {finding.detail}; writes to the "
            "rows it reads will not drop its cached output.",
            hint=HINT_OPAQUE,
            obj=label,
            id="drf_instcache.W020",
        )
        for finding in analysis.opaque
    ]
    if connected is None:
        connected = rendered.is_connected(view_class)
    if not connected:
        messages.append(
            Warning(
                f"{view_class.__name__} caches rendered output but is not connected at "
                "start-up: writes from processes that do not serve it (a shell, a worker) "
                "will not drop its entries.",
                hint=HINT_CONNECT,
                obj=label,
                id="drf_instcache.W021",
            )
        )
    return messages


def check_rendered_views() -> list[Any]:
    """Check every fast-path view of the URL conf and every connected one."""
    views = dict.fromkeys(fast_views_in_urlconf())
    views.update(dict.fromkeys(v for plan in rendered.registry.plans() for v in plan.views))
    if not views:
        return []
    messages: list[Any] = []
    if importlib.util.find_spec("orjson") is None:
        messages.append(
            Warning(
                "cache_rendered = True works best with orjson, which is not installed: "
                "fast-path views encode with DRF's JSON encoder (same output, slower).",
                hint="pip install 'drf-instcache[fast]'",
                id="drf_instcache.W023",
            )
        )
    for view_class in views:
        messages.extend(check_view(view_class))
    return messages
