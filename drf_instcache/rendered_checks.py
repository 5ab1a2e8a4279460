"""System checks of the fast path: a view that would cache wrong output fails at start-up.

Every view with ``cache_rendered = True`` found in the URL conf, or connected with
:func:`drf_instcache.rendered.connect`, is analysed (:mod:`drf_instcache.dependencies`):

* ``drf_instcache.E020``: the view cannot cache rendered output at all (no serializer or
  model, a serializer that cannot be built without a request, a list serializer that
  renders the list as a whole, a bad ``rendered_dependencies`` path);
* ``drf_instcache.E021``: a field (or the serializer) reads the serializer context, so
  its output may differ per request, and the view declares no
  ``rendered_context_key``. The error names the field;
* ``drf_instcache.W022``: orjson (the ``[fast]`` extra) is not installed, so fast-path
  views encode with DRF's own JSON encoder: the same bytes, several times slower;
* ``drf_instcache.W020``: a field whose dependencies cannot be read from its declaration
  (a ``SerializerMethodField``, a property) has none declared, so writes to the rows it
  reads may leave entries stale;
* ``drf_instcache.W021``: the view was not connected at start-up, so processes that
  write without serving it (a shell, a worker) will not drop its entries.

The same problems stop a request at run time (:class:`ImproperlyConfigured`), since
servers such as gunicorn do not run system checks.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from django.core.checks import CheckMessage, Error, Warning
from django.urls import get_resolver

from drf_instcache import rendered
from drf_instcache.checks import add_check
from drf_instcache.exceptions import ImproperlyConfigured

HINT_CONTEXT = (
    "Define rendered_context_key(self, request) on the view, returning what the output "
    "depends on (e.g. str(request.user.pk), or a coarser role): it becomes part of the "
    "cache key. Or set cache_rendered = False."
)
HINT_OPAQUE = (
    "Declare the rows it reads: rendered_dependencies = {field: ['orm__path', ...]} on "
    "the view or in the serializer's Meta ([] when it reads only the instance's own row)."
)
HINT_CONNECT = (
    "Call drf_instcache.rendered.connect(ViewClass, ...) in an AppConfig.ready(), next to "
    "drf_instcache.signals.connect()."
)


def _label(view_class: type) -> str:
    return f"{view_class.__module__}.{view_class.__qualname__}"


def fast_views_in_urlconf(urlconf: str | None = None) -> list[type]:
    """Views of the URL conf with ``cache_rendered = True`` (each once)."""
    from drf_instcache.discovery import _walk
    from drf_instcache.mixins import CachedViewMixin

    found: dict[type, None] = {}
    for _, callback in _walk(get_resolver(urlconf).url_patterns):
        view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
        initkwargs = getattr(callback, "initkwargs", None) or {}
        if (
            isinstance(view_class, type)
            and issubclass(view_class, CachedViewMixin)
            and initkwargs.get("cache_rendered", view_class.cache_rendered)
        ):
            found[view_class] = None
    return list(found)


def check_view(view_class: type, connected: bool | None = None) -> list[CheckMessage]:
    """The fast path's check messages for one view class."""
    label = _label(view_class)
    try:
        plan = rendered.plan_for_view(view_class)
    except ImproperlyConfigured as error:
        return [Error(str(error), obj=label, id="drf_instcache.E020")]
    analysis = plan.analysis
    messages: list[CheckMessage] = [
        Error(
            f"{view_class.__name__} cannot cache rendered output: {finding.where}: "
            f"{finding.detail}.",
            hint="Fix the serializer or the declaration, or set cache_rendered = False.",
            obj=label,
            id="drf_instcache.E020",
        )
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


@add_check
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
                id="drf_instcache.W022",
            )
        )
    for view_class in views:
        messages.extend(check_view(view_class))
    return messages
