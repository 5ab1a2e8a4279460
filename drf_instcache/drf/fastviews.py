"""``list`` and ``retrieve`` for views with ``cache_rendered = True`` (the fast path).

The database decides *which* rows a request sees, exactly as in plain DRF: the view's
``get_queryset()``, its filter backends and its paginator run on a real queryset, asking
only for primary keys (and a count when the paginator needs one). The *representation*
of each row is the view serializer's output, cached as JSON bytes per instance
(:mod:`drf_instcache.rendered`); missing ones are loaded in one batch through
``get_queryset()`` (so its ``select_related``/``prefetch_related`` apply), serialized
with the view's own serializer and stored. The JSON body is the pagination envelope
with the cached bytes joined into it (:mod:`drf_instcache.fastjson`); other renderers
(the browsable API) receive decoded data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Manager, QuerySet
from django.http import Http404
from django.urls import get_script_prefix
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import (
    CursorPagination,
    PageNumberPagination,
)
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.settings import api_settings

from drf_instcache.backends import near
from drf_instcache.core import counters
from drf_instcache.core.loading import filter_pks
from drf_instcache.drf import cold_pages, paging
from drf_instcache.drf.actions import FastAction
from drf_instcache.exceptions import ImproperlyConfigured
from drf_instcache.fastpath import answers, fetch, listqueries, plans
from drf_instcache.fastpath.fastjson import (
    RenderedItems,
    RenderedObject,
    decode,
    encode_representation,
    splices,
)
from drf_instcache.invalidation import rendered

__all__ = ["list_response", "retrieve_response", "usable_plan"]

logger = logging.getLogger(__name__)

_refused: set[tuple[type, str]] = set()


def refuse(view: Any, reason: str) -> None:
    """Log once per view class and reason that plain DRF serves this view's reads."""
    if (type(view), reason) in _refused:
        return
    _refused.add((type(view), reason))
    logger.warning(
        "drf-instcache: %s is served by plain DRF, not from rendered entries: %s",
        type(view).__name__,
        reason,
    )


def usable_plan(view: Any, request: Any) -> plans.RenderedPlan | None:
    """The view's plan for this request's serializer class, or None: plain DRF serves it.

    None for renderers that do not splice cached JSON (the browsable API renders from
    the serializer, with its forms; other formats are not what was cached), and for
    views the fast path cannot cache (each logged once). The plan is connected for
    invalidation on first use, so a process that serves entries also drops them on
    writes (connect views in ``AppConfig.ready()`` so that processes that only write
    do too).
    """
    if not splices(request.accepted_renderer):
        return None
    queryset = getattr(view, "queryset", None)
    if queryset is not None and not isinstance(queryset, QuerySet | Manager):
        refuse(view, f"its queryset is a {type(queryset).__name__}, not a QuerySet")
        return None
    try:
        serializer_class = view.get_serializer_class()
    except AssertionError:  # DRF's own complaint (no serializer_class): let it speak
        return None
    try:
        plan = plans.plan_for_view(type(view), serializer_class)
    except ImproperlyConfigured as error:
        refuse(view, str(error))
        return None
    problems = plan.problems()
    if problems:
        refuse(view, "; ".join(problems))
        return None
    if not plan.connected:
        rendered.connect(type(view), serializer_class=serializer_class)
    return plan


def filtered_queryset(view: Any, plan: rendered.RenderedPlan) -> QuerySet | None:
    """``filter_queryset(get_queryset())`` as DRF computes it, or None if not a QuerySet.

    The mixin does not wrap a fast view's queryset, so the view's own overrides of
    both methods run as in plain DRF.
    """
    queryset = view.get_queryset()
    if isinstance(queryset, QuerySet):
        queryset = view.filter_queryset(queryset)
        if isinstance(queryset, QuerySet):
            if issubclass(queryset.model, plan.model):
                return queryset
            refuse(
                view,
                f"its queryset is of {queryset.model.__name__}, its serializer's "
                f"entries of {plan.model.__name__}",
            )
            return None
    refuse(view, f"its queryset is a {type(queryset).__name__}, not a QuerySet")
    return None


def variant_of(view: Any, request: Any, plan: plans.RenderedPlan) -> str:
    """What of the request the plan's output depends on (empty when nothing).

    For hyperlinked output, everything DRF's ``reverse()`` writes into a URL: scheme,
    host and script prefix, the versioning scheme and version, the format suffix and
    the ``?format=`` parameter it keeps.
    """
    if not plan.varies:
        return ""
    parts: list[str] = []
    if plan.analysis.hyperlinked:
        scheme = getattr(request, "versioning_scheme", None)
        parts += [
            request.scheme,
            request.get_host(),
            get_script_prefix(),
            type(scheme).__name__ if scheme is not None else "",
            str(request.version or ""),
            str(getattr(view, "format_kwarg", None) or ""),
        ]
        override = api_settings.URL_FORMAT_OVERRIDE
        if override:
            parts.append(request.query_params.get(override) or "")
    if plan.keyed:
        parts.append(str(view.rendered_context_key(request)))
    return "|".join(parts)


_overridden: dict[tuple[type, str], bool] = {}


def _overrides(view_class: type, name: str) -> bool:
    """Whether a class in front of the mixin defines ``name`` (a view's own override)."""
    known = _overridden.get((view_class, name))
    if known is None:
        known = False
        for klass in view_class.__mro__:
            if name in vars(klass):
                known = not isinstance(vars(klass)[name], FastAction)  # the mixin's own
                break
        _overridden[(view_class, name)] = known
    return known


def _data(view: Any, request: Any, action: str, chunks: list[Any]) -> Any:
    """The cached JSON for the renderer: spliced as bytes, or decoded when the view's own
    ``list``/``retrieve`` override (or a non-splicing renderer) gets to look at it."""
    if splices(request.accepted_renderer) and not _overrides(type(view), action):
        return RenderedItems(chunks) if action == "list" else RenderedObject(chunks[0])
    decoded = list(map(decode, chunks))
    return decoded if action == "list" else decoded[0]


def _renderer(view: Any, plan: plans.RenderedPlan) -> plans.Render:
    """Render missing pks: one batch through ``get_queryset()``, the view's serializer."""

    def render(pks: list[str]) -> dict[str, bytes]:
        queryset = view.get_queryset()
        # The pks travel as strings (cache keys); the lookup prepares its own type faster.
        to_python = queryset.model._meta.pk.to_python
        return cold_pages.encode_rows(
            view, list(filter_pks(queryset, [to_python(pk) for pk in pks]))
        )

    return render


def _fetch(view: Any, plan: plans.RenderedPlan, pks: list[Any], render=None, core=None):
    return fetch.fetch(
        core or view.get_cache(),
        plan,
        pks,
        variant_of(view, view.request, plan),
        render or _renderer(view, plan),
    )


# -- list ---------------------------------------------------------------------------------
def _caches_list_queries(view: Any) -> bool:
    choice = getattr(view, "cache_list_queries", None)
    return listqueries.enabled() if choice is None else bool(choice) and listqueries.enabled()


def _description(view: Any, queryset: QuerySet, backend: Any) -> listqueries.ListQuery | None:
    """The identity of the page's key query when its results are cached, else None."""
    if backend is not None and _caches_list_queries(view):
        return listqueries.describe(queryset)
    return None


def _keys(queryset: QuerySet, backend: Any, description: listqueries.ListQuery | None) -> Any:
    """The page's key query: a queryset, or its cached results (list query caching)."""
    if description is not None:
        return listqueries.CachedKeys(queryset, description, backend)
    return queryset.values_list("pk", flat=True)


@dataclass
class _Listing:
    """The page a list request shows: its keys, and what was read of their entries."""

    pks: list[Any]
    paginated: bool
    preread: fetch.Preread | None = None


def _page_pks(
    view: Any,
    queryset: QuerySet,
    backend: Any = None,
    plan: plans.RenderedPlan | None = None,
    description: listqueries.ListQuery | None = None,
    window: tuple[int, int] | None = None,
) -> _Listing:
    """The primary keys of the page the request asks for (all of them, unpaginated),
    whether the view paginated them, and the entries read ahead with cached lists."""
    paginator = view.paginator
    if isinstance(paginator, CursorPagination):
        # The cursor reads its ordering field from each row: keep it in the rows.
        ordering = paginator.get_ordering(view.request, queryset, view)
        rows = view.paginate_queryset(
            queryset.values("pk", *{field.lstrip("-") for field in ordering})
        )
        if rows is None:
            return _Listing(list(queryset.values_list("pk", flat=True)), False)
        return _Listing([row["pk"] for row in rows], True)
    keys = _keys(queryset, backend, description)
    cached = isinstance(keys, listqueries.CachedKeys)
    rows = None
    preread = None
    if isinstance(paginator, PageNumberPagination):  # this view's own instance
        paginator.django_paginator_class = paging.listing(paginator.django_paginator_class)
    if paginator is not None:
        if cached:  # ``window``: the list's expected window, found with its description
            preread = _read_ahead(keys, plan, count=True, window=window)
        rows = view.paginate_queryset(keys)
    paginated = rows is not None
    if rows is None:  # not paginated (or page size 0): every key
        if cached:
            preread = _read_ahead(keys, plan, everything=True)
        rows = list(keys)
    if cached:
        keys.flush()
    return _Listing(list(rows), paginated, preread)


def _read_ahead(
    keys: listqueries.CachedKeys,
    plan: plans.RenderedPlan | None,
    window: tuple[int, int] | None = None,
    **needs: Any,
) -> fetch.Preread | None:
    """Read the list's cached results and, in the same round trip, the entries of the
    page this process last saw for them: when the tables have not changed since, that
    page is the answer, and a warm list costs one round trip instead of two. None when
    the backend failed (the entries are then read, or not, as without read-ahead)."""
    guessed = keys.guess_rows(window, needs.get("everything", False))
    also = _read_ahead_keys(plan, guessed) if plan is not None and guessed else {}
    found = keys.prefetch(window=window, also=list(also), **needs)
    return None if found is None else fetch.Preread(also, found)


_AHEAD_SIZE = 1024
_ahead: dict[tuple[int, int], tuple[Any, list[Any], dict[str, str]]] = {}
"""Entry keys of remembered pages, built once per page and plan (read-only dicts)."""


def _read_ahead_keys(plan: plans.RenderedPlan, guessed: list[Any]) -> dict[str, str]:
    """The entry keys of a remembered page (a remembered page is the same list object
    until its list query is recomputed, so its keys are built once, not per request)."""
    memo_key = (id(plan), id(guessed))
    known = _ahead.get(memo_key)
    if known is not None and known[0] is plan and known[1] is guessed:
        return known[2]
    keys = fetch.read_ahead_keys(plan, guessed)
    if len(_ahead) >= _AHEAD_SIZE:
        _ahead.clear()
    _ahead[memo_key] = (plan, guessed, keys)
    return keys


def list_response(view: Any, plain: Any, request: Any, *args: Any, **kwargs: Any) -> Response:
    """``list`` from rendered entries: count and page keys from the database (or the
    list query cache), bodies from the rendered entries; plain DRF where it cannot.
    With the near cache, a warm body is kept whole (:mod:`drf_instcache.fastpath.answers`).
    """
    plan = usable_plan(view, request)
    queryset = filtered_queryset(view, plan) if plan is not None else None
    if plan is None or queryset is None:
        return plain(request, *args, **kwargs)
    core = view.get_cache()
    backend = core.backend
    description = _description(view, queryset, backend)
    variant = variant_of(view, request, plan)
    asked = _Asked(description, variant)
    if description is None:
        return _list(view, request, core, plan, queryset, asked)
    paginator = view.paginator
    if paginator is not None:
        asked.window = paging.expected_window(paginator, request)
    if _overrides(type(view), "list") or fetch.settle(core):
        return _list(view, request, core, plan, queryset, asked)
    kept = answers.attempt(
        view,
        request,
        backend,
        plan.prefix,
        description.digest,
        asked.window,
        variant,
        plan.model_name,
    )
    if kept is None:
        return _list(view, request, core, plan, queryset, asked)
    if isinstance(kept, bytes):
        return Response(RenderedObject(kept))
    with near.recording_reads() as reads, counters.tracking() as counts:
        response = _list(view, request, core, plan, queryset, asked)
    return answers.keep(kept, reads, counts, view, response)


@dataclass
class _Asked:
    """What a list request's queryset and URL decide, worked out once: the key query's
    description (None: not cached), the variant, and the page window DRF will take."""

    description: listqueries.ListQuery | None
    variant: str
    window: tuple[int, int] | None = None


def _list(
    view: Any,
    request: Any,
    core: Any,
    plan: plans.RenderedPlan,
    queryset: QuerySet,
    asked: _Asked,
) -> Response:
    """The list read through the entries: page keys, one fetch, the envelope (or, for a
    cold page seen before, its rows: :mod:`~drf_instcache.drf.cold_pages`)."""
    render = _renderer(view, plan)
    cold = None if asked.description else cold_pages.prepare(view, request, core, plan, queryset)
    read = cold.read(view, queryset, render) if cold is not None else None
    if isinstance(read, list):
        return view.get_paginated_response(_data(view, request, "list", read))
    if getattr(queryset, "_prefetch_related_lookups", ()):  # only keys are read: no prefetch
        queryset = queryset.prefetch_related(None)
    listing = _page_pks(view, queryset, core.backend, plan, asked.description, asked.window)
    if cold is not None:
        cold.remember(listing.pks)
    found = fetch.fetch(
        core,
        plan,
        listing.pks,
        asked.variant,
        render,
        read or listing.preread,
    )
    ids = list(map(str, listing.pks))
    # A warm page comes back in page order already; otherwise pick the rows still there.
    chunks = list(found.values()) if list(found) == ids else [found[i] for i in ids if i in found]
    items = _data(view, request, "list", chunks)
    if listing.paginated:
        return view.get_paginated_response(items)
    return Response(items)


# -- retrieve -----------------------------------------------------------------------------
def _checks_objects(view: Any) -> bool:
    """Whether some permission class looks at the object (so it must be loaded)."""
    return any(
        getattr(type(permission), "has_object_permission", None)
        is not BasePermission.has_object_permission
        for permission in view.get_permissions()
    )


def _pk_only_lookup(view: Any, queryset: QuerySet, field: str) -> bool:
    """A lookup by primary key on an unfiltered queryset: no query needed to find it."""
    pk = queryset.model._meta.pk
    query = queryset.query
    return field in ("pk", pk.name, pk.attname) and not (
        query.where or query.is_sliced or query.combinator
    )


def _custom_get_object(view_class: type) -> bool:
    """Whether the view overrides DRF's ``get_object`` (it then decides what is shown)."""
    return view_class.get_object is not GenericAPIView.get_object  # type: ignore[attr-defined]


def retrieve_response(view: Any, plain: Any, request: Any, *args: Any, **kwargs: Any) -> Response:
    """``retrieve`` from a rendered entry: 404s and permissions as in plain DRF.

    A view's own ``get_object()`` runs as it is (one query, as in plain DRF) and the
    entry of the object it returns is served; otherwise the lookup is DRF's, asking the
    database only what it must (nothing for an unfiltered lookup by primary key).
    """
    plan = usable_plan(view, request)
    if plan is None:
        return plain(request, *args, **kwargs)
    if _custom_get_object(type(view)):
        obj = view.get_object()
        if not isinstance(obj, plan.model) or obj.pk is None:
            return Response(view.get_serializer(obj).data)
        return _serve_object(view, request, plan, obj)
    lookup_url_kwarg = view.lookup_url_kwarg or view.lookup_field
    queryset = filtered_queryset(view, plan) if lookup_url_kwarg in view.kwargs else None
    if queryset is None:  # DRF's own assertion, or a queryset the fast path cannot read
        return plain(request, *args, **kwargs)
    value = view.kwargs[lookup_url_kwarg]
    if _checks_objects(view):
        obj = _get_or_404(queryset, {view.lookup_field: value})
        view.check_object_permissions(request, obj)
        return _serve_object(view, request, plan, obj)
    if _pk_only_lookup(view, queryset, view.lookup_field):
        try:
            pk = queryset.model._meta.pk.to_python(value)
        except ValidationError:
            raise Http404 from None
    else:
        pk = _pk_or_404(queryset, {view.lookup_field: value})
    chunk = _fetch(view, plan, [pk]).get(str(pk))
    if chunk is None:
        raise Http404(f"No {queryset.model._meta.object_name} matches the given query.")
    return Response(_data(view, request, "retrieve", [chunk]))


def _serve_object(view: Any, request: Any, plan: plans.RenderedPlan, obj: Any) -> Response:
    """The entry of an object already loaded (rendered from it on a miss)."""

    def render(pks: list[str]) -> dict[str, bytes]:
        return {str(obj.pk): encode_representation(view.get_serializer(obj).data)} if pks else {}

    chunk = _fetch(view, plan, [obj.pk], render)[str(obj.pk)]
    return Response(_data(view, request, "retrieve", [chunk]))


def _get_or_404(queryset: QuerySet, lookup: dict[str, Any]) -> Any:
    try:
        return queryset.get(**lookup)
    except queryset.model.DoesNotExist:
        raise Http404(f"No {queryset.model._meta.object_name} matches the given query.") from None
    except (TypeError, ValueError, ValidationError):
        raise Http404 from None


def _pk_or_404(queryset: QuerySet, lookup: dict[str, Any]) -> Any:
    """The pk of the one row matching ``lookup`` (one query), as ``get()`` would find it."""
    try:
        pks = list(queryset.filter(**lookup).values_list("pk", flat=True)[:21])
    except (TypeError, ValueError, ValidationError):
        raise Http404 from None
    if not pks:
        raise Http404(f"No {queryset.model._meta.object_name} matches the given query.")
    if len(pks) > 1:
        raise queryset.model.MultipleObjectsReturned(
            f"get() returned more than one {queryset.model.__name__} -- it returned "
            f"{'more than 20' if len(pks) > 20 else len(pks)}!"
        )
    return pks[0]
