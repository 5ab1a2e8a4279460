"""``drf_cached_instances.mixins`` in a view written for the original project."""

from __future__ import annotations

import datetime as dt

from django.http import Http404
from django.test import TestCase
from rest_framework import serializers, viewsets
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from drf_cached_instances.mixins import CachedViewMixin, get_object_or_404
from drf_cached_instances.models import CachedModel, CachedQueryset
from drf_instcache.testing.isolation import InstcacheTestMixin
from example.polls.models import Question
from tests.compat.cache import CompatCache

PUB = dt.datetime(2014, 11, 6, 15, 30, 29, 135492, dt.UTC)


class QuestionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Question
        fields = ["id", "question_text", "pub_date"]


class QuestionViewSet(CachedViewMixin, viewsets.ModelViewSet):
    queryset = Question.objects.order_by("pk")
    serializer_class = QuestionSerializer
    cache_class = CompatCache


class OwnCache(CompatCache):
    pass


class HookViewSet(QuestionViewSet):
    def get_queryset_cache(self) -> CompatCache:
        return OwnCache()


def make_view(view_class: type, action: str, pk: int, method: str = "get") -> QuestionViewSet:
    view = view_class()
    view.action = action
    view.kwargs = {"pk": pk}
    view.format_kwarg = None
    view.request = Request(getattr(APIRequestFactory(), method)(f"/questions/{pk}/"))
    return view


class CachedViewMixinTest(InstcacheTestMixin, TestCase):
    def setUp(self) -> None:
        cache = CompatCache().cache
        assert cache is not None
        cache.clear()

    def test_retrieve_object_is_cachedmodel(self) -> None:
        question = Question.objects.create(question_text="What is your quest?", pub_date=PUB)
        obj = make_view(QuestionViewSet, "retrieve", question.pk).get_object()
        self.assertIsInstance(obj, CachedModel)
        self.assertEqual(("What is your quest?", PUB), (obj.question_text, obj.pub_date))

    def test_retrieve_missing_object_is_404(self) -> None:
        self.assertRaises(Http404, make_view(QuestionViewSet, "retrieve", 666).get_object)

    def test_update_uses_the_database(self) -> None:
        question = Question.objects.create(question_text="Q", pub_date=PUB)
        obj = make_view(QuestionViewSet, "update", question.pk, "put").get_object()
        self.assertIsInstance(obj, Question)

    def test_update_missing_object_is_404(self) -> None:
        self.assertRaises(Http404, make_view(QuestionViewSet, "update", 666, "put").get_object)

    def test_list_and_retrieve_serve_the_cached_representation(self) -> None:
        question = Question.objects.create(question_text="Cached?", pub_date=PUB)
        list_view = QuestionViewSet.as_view({"get": "list"})
        factory = APIRequestFactory()
        first = list_view(factory.get("/questions/")).data
        with self.assertNumQueries(2):  # the page's count and primary keys, nothing else
            second = list_view(factory.get("/questions/")).data
        self.assertEqual(first, second)
        self.assertEqual("Cached?", second["results"][0]["question_text"])
        detail = QuestionViewSet.as_view({"get": "retrieve"})
        response = detail(factory.get(f"/questions/{question.pk}/"), pk=question.pk)
        self.assertEqual(first["results"][0], response.data)

    def test_get_queryset_cache_override_is_used(self) -> None:
        self.assertIsInstance(make_view(HookViewSet, "retrieve", 1).get_cache(), OwnCache)
        self.assertIsInstance(
            make_view(QuestionViewSet, "retrieve", 1).get_queryset_cache(), CompatCache
        )

    def test_get_object_or_404_on_a_cached_queryset(self) -> None:
        question = Question.objects.create(question_text="Q", pub_date=PUB)
        queryset = CachedQueryset(CompatCache(), Question.objects.all())
        self.assertEqual("Q", get_object_or_404(queryset, pk=question.pk).question_text)
        self.assertRaises(Http404, get_object_or_404, queryset, pk=666)
        self.assertRaises(Http404, get_object_or_404, queryset, pk="not a number")
