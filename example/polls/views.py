"""Viewsets of the sample poll API, each in a cached and a plain DRF flavour.

The cached viewsets (``/api/...``) read through :class:`~drf_instcache.mixins.CachedViewMixin`
and :class:`~example.polls.cache.PollCache`; the fast ones (``/api/fast/...``) cache
each instance's rendered JSON (``cache_rendered = True``); the plain ones
(``/api/plain/...``) are the same endpoints without the mixin, so the benchmarks compare
like with like. The plain querysets prefetch related ids, as a careful DRF project
would, so the comparison is against good plain DRF rather than an N+1 strawman; the
fast viewsets keep the same prefetches, which their cache misses use.

``polls`` is a hyperlinked serializer with nested choices (plain and fast), the harder
case for the fast path: absolute URLs, and data from three tables.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Prefetch
from rest_framework import viewsets

from drf_instcache.mixins import CachedViewMixin
from example.polls.cache import PollCache
from example.polls.models import Choice, Question
from example.polls.serializers import (
    ChoiceSerializer,
    PollSerializer,
    QuestionSerializer,
    UserSerializer,
)

User = get_user_model()

VOTERS_BY_PK = User.objects.order_by("pk")
"""Users have no default ordering: prefetch voters in pk order, so answers are stable."""


class PlainUserViewSet(viewsets.ModelViewSet):
    """Users, served by plain DRF."""

    queryset = User.objects.order_by("pk").prefetch_related("votes")
    serializer_class = UserSerializer


class PlainQuestionViewSet(viewsets.ModelViewSet):
    """Questions, served by plain DRF."""

    queryset = Question.objects.order_by("pk").prefetch_related("choices")
    serializer_class = QuestionSerializer


class PlainChoiceViewSet(viewsets.ModelViewSet):
    """Choices, served by plain DRF."""

    queryset = Choice.objects.order_by("pk").prefetch_related(Prefetch("voters", VOTERS_BY_PK))
    serializer_class = ChoiceSerializer


class UserViewSet(CachedViewMixin, viewsets.ModelViewSet):
    """Users; list and retrieve read cached instances."""

    queryset = User.objects.order_by("pk")
    serializer_class = UserSerializer
    cache_class = PollCache


class QuestionViewSet(CachedViewMixin, viewsets.ModelViewSet):
    """Questions; list and retrieve read cached instances."""

    queryset = Question.objects.order_by("pk")
    serializer_class = QuestionSerializer
    cache_class = PollCache


class ChoiceViewSet(CachedViewMixin, viewsets.ModelViewSet):
    """Choices; list and retrieve read cached instances."""

    queryset = Choice.objects.order_by("pk")
    serializer_class = ChoiceSerializer
    cache_class = PollCache


class PlainPollViewSet(viewsets.ReadOnlyModelViewSet):
    """Questions with nested, hyperlinked choices, served by plain DRF."""

    queryset = Question.objects.order_by("pk").prefetch_related(
        "choices", Prefetch("choices__voters", VOTERS_BY_PK)
    )
    serializer_class = PollSerializer


# -- the fast path: rendered JSON per instance -------------------------------------------
class FastUserViewSet(CachedViewMixin, viewsets.ModelViewSet):
    """Users; list and retrieve join cached JSON."""

    queryset = User.objects.order_by("pk").prefetch_related("votes")
    serializer_class = UserSerializer
    cache_class = PollCache
    cache_rendered = True


class FastQuestionViewSet(CachedViewMixin, viewsets.ModelViewSet):
    """Questions; list and retrieve join cached JSON."""

    queryset = Question.objects.order_by("pk").prefetch_related("choices")
    serializer_class = QuestionSerializer
    cache_class = PollCache
    cache_rendered = True


class FastChoiceViewSet(CachedViewMixin, viewsets.ModelViewSet):
    """Choices; list and retrieve join cached JSON."""

    queryset = Choice.objects.order_by("pk").prefetch_related(Prefetch("voters", VOTERS_BY_PK))
    serializer_class = ChoiceSerializer
    cache_class = PollCache
    cache_rendered = True


class FastPollViewSet(CachedViewMixin, viewsets.ReadOnlyModelViewSet):
    """Questions with nested, hyperlinked choices; list and retrieve join cached JSON."""

    queryset = Question.objects.order_by("pk").prefetch_related(
        "choices", Prefetch("choices__voters", VOTERS_BY_PK)
    )
    serializer_class = PollSerializer
    cache_class = PollCache
    cache_rendered = True


FAST_VIEWSETS = (FastUserViewSet, FastQuestionViewSet, FastChoiceViewSet, FastPollViewSet)
"""Connected for invalidation at start-up (``example.polls.signals``)."""
