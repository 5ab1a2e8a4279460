"""Benchmark-only endpoints: whole-response caching, the fast path without cached lists,
and the floor (pre-rendered bytes through DRF's cycle).

``WholeResponseQuestionViewSet``: drf-extensions' ``cache_response``.
The same question endpoints as the example API, with each response cached whole (body,
status, headers) by `drf-extensions <https://github.com/chibisov/drf-extensions>`_
in the Django cache alias ``bench_whole`` (the harness's Redis when it runs one). It is
the ceiling a per-instance cache is measured against: no query at all on a hit, but
also no invalidation (a write leaves every cached page stale until it expires), which
is why the library does not cache this way.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from rest_framework import viewsets
from rest_framework.views import APIView
from rest_framework_extensions.cache.decorators import cache_response
from rest_framework_extensions.key_constructor import bits
from rest_framework_extensions.key_constructor.constructors import DefaultKeyConstructor

from example.polls.models import Question
from example.polls.serializers import QuestionSerializer
from example.polls.views import FastQuestionViewSet

WHOLE_RESPONSE_CACHE = "bench_whole"
"""The Django cache alias holding whole responses (defined by benchmarks.settings)."""


class PageKey(DefaultKeyConstructor):
    """View, method, format and language (the default) plus every query parameter, so
    each page has its own entry."""

    query_params = bits.QueryParamsKeyBit()


class ObjectKey(DefaultKeyConstructor):
    """The default key plus the URL keyword arguments (the pk)."""

    kwargs = bits.KwargsKeyBit()


class WholeResponseQuestionViewSet(viewsets.ReadOnlyModelViewSet):
    """Questions, each response cached whole by drf-extensions."""

    queryset = Question.objects.order_by("pk").prefetch_related("choices")
    serializer_class = QuestionSerializer

    @cache_response(key_func=PageKey(), cache=WHOLE_RESPONSE_CACHE)
    def list(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        return super().list(request, *args, **kwargs)

    @cache_response(key_func=ObjectKey(), cache=WHOLE_RESPONSE_CACHE)
    def retrieve(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        return super().retrieve(request, *args, **kwargs)


class LiveListsQuestionViewSet(FastQuestionViewSet):
    """The fast path as the issue specifies it: every list asks the database for its
    count and its page's keys (the benchmark settings cache list queries elsewhere)."""

    cache_list_queries = False


class FloorView(APIView):
    """The floor: a DRF view answering with pre-rendered bytes (no query, no cache call).

    The harness sets :attr:`body` to bytes of the warm list body's size before timing,
    so the difference to a cached list is what the cache and the list query cost.
    """

    body = b"{}"

    def get(self, request: Any, *args: Any, **kwargs: Any) -> HttpResponse:
        return HttpResponse(self.body, content_type="application/json")


class RetrieveFloorView(FloorView):
    """The floor at the warm retrieve body's size (the harness sets :attr:`body`)."""

    body = b"{}"
