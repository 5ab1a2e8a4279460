"""Test-only endpoints: the sample API plus viewsets exercising DRF features.

Each feature has a plain DRF viewset and the same viewset with the mixin in front, so
the tests can demand identical answers from both.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth.models import User
from django.urls import include, path
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import permissions, viewsets
from rest_framework.filters import OrderingFilter, SearchFilter
from rest_framework.pagination import LimitOffsetPagination, PageNumberPagination
from rest_framework.routers import SimpleRouter

from drf_instcache.mixins import CachedViewMixin
from example.polls.cache import PollCache
from example.polls.models import Choice, Question
from example.polls.serializers import ChoiceSerializer, QuestionSerializer, UserSerializer
from example.urls import urlpatterns as example_urlpatterns


class SmallPages(PageNumberPagination):
    page_size = 5
    page_size_query_param = "page_size"


class PlainSearchQuestions(viewsets.ReadOnlyModelViewSet):
    queryset = Question.objects.all()  # ordered by Meta.ordering
    serializer_class = QuestionSerializer
    pagination_class = SmallPages
    filter_backends: ClassVar[list[Any]] = [DjangoFilterBackend, SearchFilter, OrderingFilter]
    filterset_fields: ClassVar[dict[str, list[str]]] = {
        "pub_date": ["gte", "lt"],
        "question_text": ["exact"],
    }
    search_fields: ClassVar[list[str]] = ["question_text", "choices__choice_text"]
    ordering_fields: ClassVar[list[str]] = ["pub_date", "question_text", "id"]


class PlainLimitOffsetQuestions(viewsets.ReadOnlyModelViewSet):
    queryset = Question.objects.all()
    serializer_class = QuestionSerializer
    pagination_class = LimitOffsetPagination


class PlainPrefetchingChoices(viewsets.ReadOnlyModelViewSet):
    """Plain DRF done well: related rows prefetched. The cached twin needs none of it."""

    queryset = Choice.objects.select_related("question").prefetch_related("voters")
    serializer_class = ChoiceSerializer


class PlainUnpaginatedQuestions(viewsets.ReadOnlyModelViewSet):
    queryset = Question.objects.all()
    serializer_class = QuestionSerializer
    pagination_class = None


class PlainUnorderedUsers(viewsets.ReadOnlyModelViewSet):
    queryset = User.objects.all()  # no Meta.ordering: the paginator warns, as in plain DRF
    serializer_class = UserSerializer


class PlainUsersByName(viewsets.ModelViewSet):
    queryset = User.objects.order_by("pk")
    serializer_class = UserSerializer
    lookup_field = "username"
    lookup_value_regex = "[^/]+"


SEEN_BY_PERMISSION: list[Any] = []
"""Objects ``SelfOnly.has_object_permission`` was given, for the tests to inspect."""


class SelfOnly(permissions.BasePermission):
    """Users may only see and edit themselves (an object permission)."""

    def has_object_permission(self, request, view, obj) -> bool:
        SEEN_BY_PERMISSION.append(obj)
        return obj.pk == request.user.pk


class PlainSelfOnlyUsers(viewsets.ModelViewSet):
    queryset = User.objects.order_by("pk")
    serializer_class = UserSerializer
    permission_classes: ClassVar[list[Any]] = [permissions.IsAuthenticated, SelfOnly]


class PlainMyVotes(viewsets.ReadOnlyModelViewSet):
    """The choices the requesting user voted for: a per-user queryset."""

    serializer_class = ChoiceSerializer
    permission_classes: ClassVar[list[Any]] = [permissions.IsAuthenticated]

    def get_queryset(self):
        return Choice.objects.filter(voters=self.request.user).order_by("pk")


PLAIN_VIEWSETS = {
    "search-questions": PlainSearchQuestions,
    "limit-questions": PlainLimitOffsetQuestions,
    "all-questions": PlainUnpaginatedQuestions,
    "prefetching-choices": PlainPrefetchingChoices,
    "unordered-users": PlainUnorderedUsers,
    "users-by-name": PlainUsersByName,
    "self-only-users": PlainSelfOnlyUsers,
    "my-votes": PlainMyVotes,
}


def with_cache(viewset: type) -> type:
    """The same viewset with ``CachedViewMixin`` in front."""
    name = viewset.__name__.replace("Plain", "Cached")
    return type(name, (CachedViewMixin, viewset), {"cache_class": PollCache})


CACHED_VIEWSETS = {prefix: with_cache(viewset) for prefix, viewset in PLAIN_VIEWSETS.items()}

plain_router = SimpleRouter()
cached_router = SimpleRouter()
for prefix, viewset in PLAIN_VIEWSETS.items():
    plain_router.register(prefix, viewset, basename=f"plain-{prefix}")
    cached_router.register(prefix, CACHED_VIEWSETS[prefix], basename=f"cached-{prefix}")

urlpatterns = [
    path("t/plain/", include(plain_router.urls)),
    path("t/", include(cached_router.urls)),
    *example_urlpatterns,
]
