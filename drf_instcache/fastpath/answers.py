"""Warm list bodies kept whole in the near cache, served while nothing they read changed.

A warm fast-path list reads the same entries, generations and list-query results on
every request, and assembles the same bytes from them. With the near cache on, the
body is kept in the near cache beside what it was computed from: the keys read. The
near cache's invalidation log then says, in a set intersection, whether any of those
keys was invalidated since, by this process or (announced by Redis) by another one; if
none was, the kept body *is* the answer, and the request skips the list-query reads,
the paginator and the renderer (measured in README "Near cache").

The view's own code still runs where it decides *what* is shown: authentication,
permissions and throttles (``initial()``), ``get_queryset()`` and the filter backends,
whose query is part of the key (its description digest, as for cached list queries).
A body is kept only when computed from complete reads (every key found: Redis
announces changes of existing keys only), with no miss, fallback or error, and served
only under the same key: view, plan, query, page window, variant, renderer and media
type, and every request value DRF's pagination links are built from.

Where any of DRF's pagination or response methods is the view's own, or the renderer
context is, no body is kept (they may put anything in it).
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.paginator import Paginator as DjangoPaginator
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import LimitOffsetPagination, PageNumberPagination
from rest_framework.views import APIView

from drf_instcache.backends.near import NearCacheBackend, NearReads, near_layer
from drf_instcache.core import counters as stats
from drf_instcache.fastpath.fastjson import RenderedObject

__all__ = ["Attempt", "attempt", "keep"]

_PAGINATOR_METHODS = {
    PageNumberPagination: (
        "paginate_queryset",
        "get_paginated_response",
        "get_next_link",
        "get_previous_link",
    ),
    LimitOffsetPagination: (
        "paginate_queryset",
        "get_paginated_response",
        "get_next_link",
        "get_previous_link",
        "get_count",
    ),
}
_VIEW_METHODS = {
    "get_paginated_response": GenericAPIView,
    "paginate_queryset": GenericAPIView,
    "get_renderer_context": APIView,
}


@dataclass
class Attempt:
    """A list request whose body may be kept: where, under which key, since when."""

    near: NearCacheBackend
    key: tuple[Any, ...]
    ticket: Any
    model_name: str


_drfs: dict[type, bool] = {}
"""Per paginator and view class: whether it uses DRF's own envelope code (found once)."""


def _paginator_is_drfs(paginator_class: type) -> bool:
    """Whether a paginator builds its envelope with DRF's own code only."""
    known = _drfs.get(paginator_class)
    if known is None:
        known = _drfs[paginator_class] = (
            any(
                issubclass(paginator_class, base)
                and all(getattr(paginator_class, name) is getattr(base, name) for name in names)
                for base, names in _PAGINATOR_METHODS.items()
            )
            and getattr(paginator_class, "django_paginator_class", DjangoPaginator)
            is DjangoPaginator
        )
    return known


def _view_is_drfs(view_class: type) -> bool:
    """Whether the view leaves DRF's pagination calls and renderer context alone."""
    known = _drfs.get(view_class)
    if known is None:
        known = _drfs[view_class] = all(
            getattr(view_class, name) is getattr(base, name) for name, base in _VIEW_METHODS.items()
        )
    return known


def _link_inputs(request: Any) -> tuple[Any, ...]:
    """Every request value ``build_absolute_uri()`` (DRF's links) is made of, raw."""
    meta = request._request.META
    proxy = settings.SECURE_PROXY_SSL_HEADER
    return (
        meta.get("wsgi.url_scheme"),
        meta.get("HTTP_HOST"),
        meta.get("SERVER_NAME"),
        meta.get("SERVER_PORT"),
        meta.get("HTTP_X_FORWARDED_HOST"),
        meta.get("HTTP_X_FORWARDED_PORT"),
        meta.get(proxy[0]) if proxy else None,
        request._request.path,
        meta.get("QUERY_STRING"),
    )


def attempt(
    view: Any,
    request: Any,
    backend: Any,
    prefix: str,
    digest: str,
    window: tuple[int, int] | None,
    variant: str,
    model_name: str,
) -> bytes | Attempt | None:
    """The kept body of this request (a hit), an :class:`Attempt` to keep one, or None.

    None when no body may be kept here: no live near cache, a window not known before
    the count (``?page=last``), a paginator or view with its own envelope code.
    """
    near = near_layer(backend)
    paginator = view.paginator
    if (
        near is None
        or window is None
        or paginator is None
        or not _paginator_is_drfs(type(paginator))
        or not _view_is_drfs(type(view))
    ):
        return None
    key = (
        type(view),
        type(paginator),
        prefix,
        digest,
        window,
        variant,
        type(request.accepted_renderer),
        request.accepted_media_type,
        *_link_inputs(request),
    )
    kept = near.answer(key)
    if kept is not None:
        body, hits = kept
        stats.incr("hits", hits, model=model_name)
        return body
    ticket = near.mark()
    if ticket is None:
        return None
    return Attempt(near, key, ticket, model_name)


def keep(attempt: Attempt, reads: NearReads, counts: Counter[str], view: Any, response: Any) -> Any:
    """Keep the body of ``response`` when it came from complete, all-hit reads.

    Renders it here (the renderer then writes these bytes as they are), so the body
    kept is the body sent.
    """
    data = response.data
    if (
        response.status_code != 200
        or not isinstance(data, dict)
        or counts["misses"]
        or counts["fallbacks"]
        or counts["errors"]
        or not reads.complete
    ):
        return response
    request = view.request
    body = request.accepted_renderer.render(
        data, request.accepted_media_type, view.get_renderer_context()
    )
    if not isinstance(body, bytes):
        return response
    if attempt.near.keep_answer(
        attempt.key, (body, counts["hits"]), sys.getsizeof(body), reads, attempt.ticket
    ):
        response.data = RenderedObject(body)
    return response
