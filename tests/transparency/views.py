"""The shapes of the transparency suite: views real projects write, each in a plain flavour.

Every class here is plain DRF. :func:`twin` builds the cached flavours of one of them:
the same class with :class:`~drf_instcache.mixins.CachedViewMixin` in front, in
*instance* mode (``cache_class = PollCache``) or on the *fast* path (``cache_rendered =
True``). A twin keeps its plain class's ``__name__`` and docstring, so DRF's view name
and description (OPTIONS, the browsable API) are the same as the plain view's: only the
mixin differs.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth.models import User
from django.db.models import Prefetch
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import generics, permissions, serializers, viewsets
from rest_framework.authentication import BasicAuthentication, SessionAuthentication
from rest_framework.filters import OrderingFilter, SearchFilter
from rest_framework.pagination import (
    CursorPagination,
    LimitOffsetPagination,
    PageNumberPagination,
)
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle, UserRateThrottle
from rest_framework.versioning import NamespaceVersioning, URLPathVersioning

from drf_instcache.mixins import CachedViewMixin
from example.polls.cache import PollCache
from example.polls.models import Choice, Question
from example.polls.serializers import ChoiceSerializer, QuestionSerializer, UserSerializer

VOTERS_BY_PK = User.objects.order_by("pk")


# -- serializers --------------------------------------------------------------------------
class BriefUserSerializer(serializers.ModelSerializer):
    """What a non-staff user sees of a user."""

    class Meta:
        model = User
        fields = ("id", "username")


class QuestionTitleSerializer(serializers.ModelSerializer):
    """The list flavour of a question: no date, no choices."""

    class Meta:
        model = Question
        fields = ("id", "question_text")


class LinkedQuestionSerializer(serializers.HyperlinkedModelSerializer):
    """A question with its own link and its choices' links (``question-detail`` etc.)."""

    choices = serializers.HyperlinkedRelatedField(
        many=True, read_only=True, view_name="choice-detail"
    )

    class Meta:
        model = Question
        fields = ("url", "id", "question_text", "choices")


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


class RowSerializer(serializers.Serializer):
    """A plain serializer of dicts: no model anywhere."""

    id = serializers.IntegerField()
    name = serializers.CharField()


class NumberSerializer(serializers.Serializer):
    """A plain serializer of ints."""

    value = serializers.IntegerField(source="*")
    square = serializers.SerializerMethodField()

    def get_square(self, number: int) -> int:
        return number * number


# -- permissions, paginators, throttles ---------------------------------------------------
class SelfOnly(permissions.BasePermission):
    """Users may only see themselves: others are 403."""

    def has_object_permission(self, request, view, obj) -> bool:
        return obj.pk == request.user.pk


class SelfOrHidden(permissions.BasePermission):
    """Users may only see themselves: others do not exist (404)."""

    def has_object_permission(self, request, view, obj) -> bool:
        if obj.pk != request.user.pk:
            raise Http404("No User matches the given query.")
        return True


class SelfOrReadOnly(permissions.BasePermission):
    """Everyone signed in may read any user; only the user may edit or delete themselves."""

    def has_object_permission(self, request, view, obj) -> bool:
        return request.method in permissions.SAFE_METHODS or obj.pk == request.user.pk


class TwoPerPage(PageNumberPagination):
    page_size = 2
    page_size_query_param = "page_size"


class TwoByDefault(LimitOffsetPagination):
    default_limit = 2


class NewestFirstCursor(CursorPagination):
    ordering = "-pub_date"
    page_size = 2


class EnvelopePagination(PageNumberPagination):
    """A project's own envelope: ``{"meta": ..., "data": [...]}`` and a ``Link`` header."""

    page_size = 2

    def get_paginated_response(self, data: Any) -> Response:
        links = [
            f'<{url}>; rel="{rel}"'
            for rel, url in (("next", self.get_next_link()), ("prev", self.get_previous_link()))
            if url
        ]
        return Response(
            {
                "meta": {"total": self.page.paginator.count, "page": self.page.number},
                "data": data,
            },
            headers={"Link": ", ".join(links)} if links else None,
        )


class PathVersions(URLPathVersioning):
    allowed_versions = ("v1", "v2")


class NamespaceVersions(NamespaceVersioning):
    allowed_versions = ("v1", "v2")


class ThreePerMinuteUser(UserRateThrottle):
    rate = "3/min"


class ThreePerMinuteScoped(ScopedRateThrottle):
    THROTTLE_RATES: ClassVar[dict[str, str]] = {"transparency": "3/min"}


# -- shapes: get_object overrides -----------------------------------------------------------
class ActiveUsers(viewsets.ReadOnlyModelViewSet):
    """Users; a deactivated user is soft-deleted: 404 on retrieve, still listed."""

    queryset = User.objects.order_by("pk")
    serializer_class = UserSerializer

    def get_object(self):
        user = super().get_object()
        if not user.is_active:
            raise Http404("This user was deleted.")
        return user


class LiveQuestions(viewsets.ReadOnlyModelViewSet):
    """Questions; a question whose text starts with [deleted] is soft-deleted."""

    queryset = Question.objects.order_by("pk")
    serializer_class = QuestionSerializer

    def get_object(self):
        question = super().get_object()
        if question.question_text.startswith("[deleted]"):
            raise Http404("This question was deleted.")
        return question


class Me(generics.RetrieveAPIView):
    """The requesting user."""

    serializer_class = UserSerializer
    permission_classes: ClassVar[list[Any]] = [permissions.IsAuthenticated]
    authentication_classes: ClassVar[list[Any]] = [BasicAuthentication, SessionAuthentication]

    def get_object(self):
        return self.request.user


class QuestionWithoutQueryset(generics.RetrieveAPIView):
    """A question found by get_object alone: no queryset, no get_queryset."""

    serializer_class = QuestionSerializer

    def get_object(self):
        return get_object_or_404(Question, pk=self.kwargs["pk"])


class AnsweredQuestion(generics.RetrieveAPIView):
    """A question that has choices, found by get_object over get_queryset (no queryset)."""

    serializer_class = QuestionSerializer

    def get_queryset(self):
        return Question.objects.order_by("pk")

    def get_object(self):
        queryset = self.filter_queryset(self.get_queryset()).filter(choices__isnull=False)
        obj = get_object_or_404(queryset.distinct(), pk=self.kwargs["pk"])
        self.check_object_permissions(self.request, obj)
        return obj


# -- shapes: who sees what --------------------------------------------------------------------
class MyVotes(viewsets.ReadOnlyModelViewSet):
    """The choices the requesting user voted for."""

    serializer_class = ChoiceSerializer
    permission_classes: ClassVar[list[Any]] = [permissions.IsAuthenticated]

    def get_queryset(self):
        return Choice.objects.filter(voters=self.request.user).order_by("pk")


class QuestionsPerAction(viewsets.ReadOnlyModelViewSet):
    """Titles in the list, the whole question on retrieve."""

    queryset = Question.objects.order_by("pk")

    def get_serializer_class(self):
        return QuestionTitleSerializer if self.action == "list" else QuestionSerializer


class UsersPerRole(viewsets.ReadOnlyModelViewSet):
    """Staff see users' dates and votes; others only their names."""

    queryset = User.objects.order_by("pk")

    def get_serializer_class(self):
        return UserSerializer if self.request.user.is_staff else BriefUserSerializer


class UsersByName(viewsets.ReadOnlyModelViewSet):
    """Users by username."""

    queryset = User.objects.order_by("pk")
    serializer_class = UserSerializer
    lookup_field = "username"
    lookup_value_regex = "[^/]+"


class UsersByNameKwarg(viewsets.ReadOnlyModelViewSet):
    """Users by username, under another URL keyword."""

    queryset = User.objects.order_by("pk")
    serializer_class = UserSerializer
    lookup_field = "username"
    lookup_url_kwarg = "name"
    lookup_value_regex = "[^/]+"


class QuestionsByKwarg(viewsets.ReadOnlyModelViewSet):
    """Questions by pk, under another URL keyword."""

    queryset = Question.objects.order_by("pk")
    serializer_class = QuestionSerializer
    lookup_url_kwarg = "question_pk"


class SelfOnlyUsers(viewsets.ReadOnlyModelViewSet):
    """Users may see only themselves (403 for others)."""

    queryset = User.objects.order_by("pk")
    serializer_class = UserSerializer
    permission_classes: ClassVar[list[Any]] = [permissions.IsAuthenticated, SelfOnly]


class HiddenUsers(viewsets.ReadOnlyModelViewSet):
    """Users may see only themselves (404 for others)."""

    queryset = User.objects.order_by("pk")
    serializer_class = UserSerializer
    permission_classes: ClassVar[list[Any]] = [permissions.IsAuthenticated, SelfOrHidden]


class ReadOthersEditSelf(viewsets.ModelViewSet):
    """Any user may be read; a user may edit only themselves."""

    queryset = User.objects.order_by("pk")
    serializer_class = UserSerializer
    permission_classes: ClassVar[list[Any]] = [permissions.IsAuthenticated, SelfOrReadOnly]


class MineChoices(viewsets.ReadOnlyModelViewSet):
    """Every choice, marked with whether the requesting user picked it."""

    queryset = Choice.objects.order_by("pk").prefetch_related(Prefetch("voters", VOTERS_BY_PK))
    serializer_class = MineSerializer


# -- shapes: lists ------------------------------------------------------------------------------
class Questions(viewsets.ReadOnlyModelViewSet):
    queryset = Question.objects.order_by("pk")
    serializer_class = QuestionSerializer


class PagedQuestions(Questions):
    """Questions, two per page."""

    pagination_class = TwoPerPage


class OffsetQuestions(Questions):
    """Questions, by limit and offset."""

    pagination_class = TwoByDefault


class CursorQuestions(Questions):
    """Questions, newest first, by cursor."""

    pagination_class = NewestFirstCursor


class EnvelopedQuestions(Questions):
    """Questions in the project's own envelope."""

    pagination_class = EnvelopePagination


class SearchedQuestions(Questions):
    """Questions, searchable."""

    filter_backends: ClassVar[list[Any]] = [SearchFilter]
    search_fields: ClassVar[list[str]] = ["question_text", "choices__choice_text"]


class OrderedQuestions(Questions):
    """Questions, orderable."""

    filter_backends: ClassVar[list[Any]] = [OrderingFilter]
    ordering_fields: ClassVar[list[str]] = ["pub_date", "question_text", "id"]


class FilteredQuestions(Questions):
    """Questions, filterable with django-filter."""

    filter_backends: ClassVar[list[Any]] = [DjangoFilterBackend]
    filterset_fields: ClassVar[dict[str, list[str]]] = {
        "pub_date": ["gte", "lt"],
        "question_text": ["exact"],
    }


class ThrottledPerUser(Questions):
    """Questions, three requests a minute per user."""

    throttle_classes: ClassVar[list[Any]] = [ThreePerMinuteUser]


class ThrottledPerScope(Questions):
    """Questions, three requests a minute in their scope."""

    throttle_classes: ClassVar[list[Any]] = [ThreePerMinuteScoped]
    throttle_scope = "transparency"


# -- shapes: links ------------------------------------------------------------------------------
class LinkedQuestions(Questions):
    """Hyperlinked questions (links into the example API)."""

    serializer_class = LinkedQuestionSerializer


class PathVersionedQuestions(LinkedQuestions):
    """Hyperlinked questions; the version is in the URL path."""

    versioning_class = PathVersions


class NamespaceVersionedQuestions(LinkedQuestions):
    """Hyperlinked questions; the version is the URL namespace."""

    versioning_class = NamespaceVersions


def link_target(request: Any, **kwargs: Any) -> HttpResponse:
    """Where versioned links point (never requested by the tests)."""
    return HttpResponse(status=204)


# -- shapes: no model -------------------------------------------------------------------------
ROWS = [{"id": number, "name": f"row {number}"} for number in range(1, 6)]


class ListRows(viewsets.ReadOnlyModelViewSet):
    """Rows from a Python list, with a plain Serializer."""

    queryset = ROWS
    serializer_class = RowSerializer
    pagination_class = TwoPerPage


class RangeNumbers(viewsets.ReadOnlyModelViewSet):
    """Numbers from a range(), with a plain Serializer."""

    queryset = range(1, 8)
    serializer_class = NumberSerializer
    pagination_class = TwoPerPage


class NoSerializerClass(viewsets.ReadOnlyModelViewSet):
    """A queryset and no serializer_class: plain DRF's own AssertionError."""

    queryset = Question.objects.order_by("pk")


class QuestionsAsList(viewsets.ReadOnlyModelViewSet):
    """get_queryset() returns a list of model instances."""

    serializer_class = QuestionSerializer

    def get_queryset(self):
        return list(Question.objects.order_by("pk").prefetch_related("choices"))


# -- twins ------------------------------------------------------------------------------------
def per_user(view: Any, request: Any) -> str:
    """The context key of views whose output depends on the requesting user."""
    return str(request.user.pk)


LEVEL_PREFIXES = {"plain": "plain", "instance": "instance", "fast": "fast", "fast-lists": "fast"}
"""URL prefix (``/tp-<prefix>/``) of each level; ``fast-lists`` is the fast path with
``DRF_INSTCACHE_CACHE_LIST_QUERIES = True`` and shares the fast views."""


def twin(plain: type, level: str, keyed: bool = False) -> type:
    """``plain`` with the mixin in front: ``instance`` mode or the ``fast`` path."""
    if level == "plain":
        return plain
    attributes: dict[str, Any] = {
        "cache_class": PollCache,
        "__doc__": plain.__doc__,
        "__module__": plain.__module__,
        "__qualname__": f"{level.capitalize()}{plain.__name__}",
    }
    if level == "fast":
        attributes["cache_rendered"] = True
        if keyed:
            attributes["rendered_context_key"] = per_user
    return type(plain.__name__, (CachedViewMixin, plain), attributes)
