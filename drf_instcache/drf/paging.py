"""DRF's paginators as the fast path uses them: the window a request asks for, known
before the count, and Django pages iterated as the lists they hold."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from django.core.paginator import Page
from django.core.paginator import Paginator as DjangoPaginator
from rest_framework.pagination import LimitOffsetPagination, PageNumberPagination

__all__ = ["ListedPage", "expected_window", "listing"]


def expected_window(paginator: Any, request: Any) -> tuple[int, int] | None:
    """The slice DRF's paginators will take for this request, known before the count."""
    if isinstance(paginator, PageNumberPagination):
        size = paginator.get_page_size(request)
        number = request.query_params.get(paginator.page_query_param) or 1
        if not size or number in paginator.last_page_strings:
            return None
        try:
            number = int(number)
        except (TypeError, ValueError):
            return None
        return ((number - 1) * size, number * size) if number > 0 else None
    if isinstance(paginator, LimitOffsetPagination):
        limit = paginator.get_limit(request)
        if limit is None:
            return None
        offset = paginator.get_offset(request)
        return (offset, offset + limit)
    return None


class ListedPage(Page):
    """A Django page iterated as the list it holds.

    DRF's page-number paginator returns ``list(page)``; Django's ``Page`` would fetch
    the rows one index at a time, a Python call per key (100 on a full page).
    """

    def __iter__(self) -> Iterator[Any]:
        if not isinstance(self.object_list, list):
            self.object_list = list(self.object_list)
        return iter(self.object_list)


@functools.cache
def listing(paginator_class: type[DjangoPaginator]) -> type[DjangoPaginator]:
    """``paginator_class`` making :class:`ListedPage` pages (unless it makes its own)."""
    if paginator_class._get_page is not DjangoPaginator._get_page:  # type: ignore[attr-defined]
        return paginator_class
    return type(
        paginator_class.__name__,
        (paginator_class,),
        {"_get_page": lambda self, *args, **kwargs: ListedPage(*args, **kwargs)},
    )
