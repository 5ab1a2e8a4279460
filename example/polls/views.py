"""Viewsets of the sample poll API, each in a cached and a plain DRF flavour.

The cached viewsets (``/api/...``) read through :class:`~drf_instcache.mixins.CachedViewMixin`
and :class:`~example.polls.cache.PollCache`; the plain ones (``/api/plain/...``) are the
same endpoints without the mixin, so the benchmarks compare like with like. The plain
querysets prefetch related ids, as a careful DRF project would, so the comparison is
against good plain DRF rather than an N+1 strawman.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework import viewsets

from drf_instcache.mixins import CachedViewMixin
from example.polls.cache import PollCache
from example.polls.models import Choice, Question
from example.polls.serializers import ChoiceSerializer, QuestionSerializer, UserSerializer

User = get_user_model()


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

    queryset = Choice.objects.order_by("pk").prefetch_related("voters")
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
