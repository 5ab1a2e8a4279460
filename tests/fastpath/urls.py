"""Test endpoints for the fast path: each one in a plain DRF and a fast flavour.

The tests demand that the fast flavour parses to exactly what the plain one answers,
so every pair differs only by ``CachedViewMixin`` with ``cache_rendered = True``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth.models import User
from django.db.models import Prefetch
from django.urls import include, path
from rest_framework import permissions, serializers, viewsets
from rest_framework.filters import BaseFilterBackend, OrderingFilter, SearchFilter
from rest_framework.pagination import CursorPagination, LimitOffsetPagination
from rest_framework.routers import SimpleRouter

from drf_instcache.mixins import CachedViewMixin
from example.polls.cache import PollCache
from example.polls.models import Choice, Question
from example.polls.serializers import PollSerializer, QuestionSerializer, UserSerializer
from example.polls.views import VOTERS_BY_PK
from example.urls import urlpatterns as example_urlpatterns

RENDER_CALLS: list[int] = []
"""One entry per representation :class:`CountedQuestionSerializer` computed."""


class CountedQuestionSerializer(QuestionSerializer):
    """The question serializer, counting how often it renders an instance."""

    def to_representation(self, instance: Any) -> Any:
        RENDER_CALLS.append(instance.pk)
        return super().to_representation(instance)


class MineSerializer(serializers.ModelSerializer):
    """A choice and whether the requesting user voted for it: depends on the request."""

    mine = serializers.SerializerMethodField()

    class Meta:
        model = Choice
        fields = ("id", "choice_text", "mine")
        rendered_dependencies: ClassVar[dict[str, list[str]]] = {"mine": ["voters"]}

    def get_mine(self, choice: Choice) -> bool:
        user = self.context["request"].user
        return any(voter.pk == user.pk for voter in choice.voters.all())


class SelfOnly(permissions.BasePermission):
    """Users may only see themselves (an object permission)."""

    def has_object_permission(self, request, view, obj) -> bool:
        return obj.pk == request.user.pk


class CursorById(CursorPagination):
    ordering = "id"
    page_size = 4


class PlainLimitQuestions(viewsets.ReadOnlyModelViewSet):
    queryset = Question.objects.order_by("pk").prefetch_related("choices")
    serializer_class = QuestionSerializer
    pagination_class = LimitOffsetPagination


class PlainLimitPolls(viewsets.ReadOnlyModelViewSet):
    queryset = Question.objects.order_by("pk").prefetch_related(
        "choices", Prefetch("choices__voters", VOTERS_BY_PK)
    )
    serializer_class = PollSerializer
    pagination_class = LimitOffsetPagination


class PlainAllPolls(viewsets.ReadOnlyModelViewSet):
    queryset = Question.objects.order_by("pk").prefetch_related(
        "choices", Prefetch("choices__voters", VOTERS_BY_PK)
    )
    serializer_class = PollSerializer
    pagination_class = None


class PlainCursorQuestions(viewsets.ReadOnlyModelViewSet):
    queryset = Question.objects.all()
    serializer_class = QuestionSerializer
    pagination_class = CursorById


class PlainSearchQuestions(viewsets.ReadOnlyModelViewSet):
    queryset = Question.objects.all()
    serializer_class = QuestionSerializer
    filter_backends: ClassVar[list[Any]] = [SearchFilter, OrderingFilter]
    search_fields: ClassVar[list[str]] = ["question_text", "choices__choice_text"]
    ordering_fields: ClassVar[list[str]] = ["pub_date", "question_text", "id"]


class DeferPubDate(BaseFilterBackend):
    """A filter backend that reshapes the rows (defers a column the serializer shows)."""

    def filter_queryset(self, request: Any, queryset: Any, view: Any) -> Any:
        return queryset.defer("pub_date")


class PlainDeferringQuestions(viewsets.ReadOnlyModelViewSet):
    queryset = Question.objects.order_by("pk").prefetch_related("choices")
    serializer_class = QuestionSerializer
    pagination_class = LimitOffsetPagination
    filter_backends: ClassVar[list[Any]] = [DeferPubDate]


class PlainQuestionsByChoiceText(viewsets.ReadOnlyModelViewSet):
    """Questions having a choice whose text contains ``?text=``: a join on polls_choice."""

    serializer_class = QuestionSerializer

    def get_queryset(self):
        text = self.request.query_params.get("text", "")
        return (
            Question.objects.filter(choices__choice_text__icontains=text)
            .distinct()
            .order_by("pk")
            .prefetch_related("choices")
        )


class PlainUsersByName(viewsets.ReadOnlyModelViewSet):
    queryset = User.objects.order_by("pk")
    serializer_class = UserSerializer
    lookup_field = "username"
    lookup_value_regex = "[^/]+"


class PlainSelfOnlyUsers(viewsets.ReadOnlyModelViewSet):
    queryset = User.objects.order_by("pk")
    serializer_class = UserSerializer
    permission_classes: ClassVar[list[Any]] = [permissions.IsAuthenticated, SelfOnly]


class PlainMyVotes(viewsets.ReadOnlyModelViewSet):
    """The choices the requesting user voted for: a per-user queryset."""

    serializer_class = MineSerializer
    permission_classes: ClassVar[list[Any]] = [permissions.IsAuthenticated]

    def get_queryset(self):
        return (
            Choice.objects.filter(voters=self.request.user)
            .order_by("pk")
            .prefetch_related(Prefetch("voters", VOTERS_BY_PK))
        )


class PlainMineChoices(viewsets.ReadOnlyModelViewSet):
    """Every choice, marked with whether the requesting user picked it."""

    queryset = Choice.objects.order_by("pk").prefetch_related(Prefetch("voters", VOTERS_BY_PK))
    serializer_class = MineSerializer


class PlainCountedQuestions(viewsets.ReadOnlyModelViewSet):
    queryset = Question.objects.order_by("pk").prefetch_related("choices")
    serializer_class = CountedQuestionSerializer


class PlainRetrieveOnlyQuestions(viewsets.GenericViewSet):
    """No list: the router must not grow one when the mixin is added."""

    queryset = Question.objects.order_by("pk")
    serializer_class = QuestionSerializer

    def retrieve(self, request, *args, **kwargs):
        from rest_framework.response import Response

        return Response(self.get_serializer(self.get_object()).data)


def per_user(view: Any, request: Any) -> str:
    """The context key of views whose output depends on the requesting user."""
    return str(request.user.pk)


PLAIN_VIEWSETS: dict[str, type] = {
    "limit-questions": PlainLimitQuestions,
    "limit-polls": PlainLimitPolls,
    "all-polls": PlainAllPolls,
    "cursor-questions": PlainCursorQuestions,
    "search-questions": PlainSearchQuestions,
    "deferring-questions": PlainDeferringQuestions,
    "questions-by-choice-text": PlainQuestionsByChoiceText,
    "users-by-name": PlainUsersByName,
    "self-only-users": PlainSelfOnlyUsers,
    "my-votes": PlainMyVotes,
    "mine-choices": PlainMineChoices,
    "counted-questions": PlainCountedQuestions,
    "retrieve-only-questions": PlainRetrieveOnlyQuestions,
}

KEYED = {"my-votes", "mine-choices"}
"""Endpoints whose output depends on the user: the fast flavour declares a context key."""


def fast(prefix: str, viewset: type) -> type:
    """The same viewset on the fast path."""
    attributes: dict[str, Any] = {"cache_class": PollCache, "cache_rendered": True}
    if prefix in KEYED:
        attributes["rendered_context_key"] = per_user
    return type(viewset.__name__.replace("Plain", "Fast"), (CachedViewMixin, viewset), attributes)


FAST_VIEWSETS = {prefix: fast(prefix, viewset) for prefix, viewset in PLAIN_VIEWSETS.items()}

plain_router = SimpleRouter()
fast_router = SimpleRouter()
for prefix, viewset in PLAIN_VIEWSETS.items():
    plain_router.register(prefix, viewset, basename=f"t-plain-{prefix}")
    fast_router.register(prefix, FAST_VIEWSETS[prefix], basename=f"t-fast-{prefix}")

urlpatterns = [
    path("t/plain/", include(plain_router.urls)),
    path("t/fast/", include(fast_router.urls)),
    *example_urlpatterns,
]
