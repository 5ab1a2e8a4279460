"""CachedQueryset, CachedModel and the PkOnly look-alikes: QuerySet semantics, few queries."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef
from rest_framework import serializers

from drf_instcache.core import lookalikes as models_module
from drf_instcache.models import CachedModel, CachedQueryset, PkOnlyModel, PkOnlyQueryset
from example.polls.cache import PollCache
from example.polls.models import Choice, Question
from tests.core.conftest import make_questions

pytestmark = pytest.mark.django_db


@pytest.fixture
def cache(locmem_backend):
    return PollCache(backend=locmem_backend)


@pytest.fixture
def questions(cache):
    """Five questions, already cached (so query counts show only primary-key queries)."""
    made = make_questions(5)
    cache.get_instances([("Question", q.pk, None) for q in made])
    return made


def cached_questions(cache, queryset=None, **kwargs):
    return CachedQueryset(cache, Question.objects.all() if queryset is None else queryset, **kwargs)


# -- CachedQueryset -----------------------------------------------------------------------
def test_iteration_follows_the_queryset_order(cache, questions, django_assert_num_queries):
    with django_assert_num_queries(1):
        items = list(cached_questions(cache, Question.objects.order_by("-pk")))
    assert [item.pk for item in items] == sorted((q.pk for q in questions), reverse=True)
    assert all(isinstance(item, CachedModel) and item.model is Question for item in items)
    assert items[-1].question_text == "Question 0?"


def test_cold_iteration_loads_in_one_batch(locmem_backend, django_assert_num_queries):
    made = make_questions(20)
    with django_assert_num_queries(3):  # primary keys, rows, choices
        items = list(cached_questions(PollCache(backend=locmem_backend)))
    assert [item.pk for item in items] == [q.pk for q in made]
    assert locmem_backend.calls == {"get_many": 1, "set_many": 1}


def test_primary_keys_are_queried_once(cache, questions, django_assert_num_queries):
    queryset = cached_questions(cache)
    with django_assert_num_queries(1):
        assert len(queryset) == 5
        assert queryset.count() == 5
        assert queryset.exists()
        assert len(list(queryset)) == len(list(queryset)) == 5
        assert queryset.values_list("pk", flat=True) == [q.pk for q in questions]


def test_count_and_exists_ask_the_database_until_keys_are_known(
    cache, questions, django_assert_num_queries
):
    with django_assert_num_queries(2):
        assert cached_questions(cache).count() == 5
        assert cached_questions(cache).filter(pk=-1).exists() is False


def test_chaining_delegates_to_the_real_queryset(cache, questions, django_assert_num_queries):
    first, second = questions[0], questions[1]
    base = cached_questions(cache)
    with django_assert_num_queries(0):
        chained = {
            "filter": base.filter(question_text__in=["Question 0?", "Question 1?"]),
            "exclude": base.exclude(pk=first.pk),
            "order_by": base.order_by("-pub_date"),
            "distinct": base.filter(choices__choice_text__startswith="Answer").distinct(),
            "all": base.all(),
        }
    assert all(isinstance(queryset, CachedQueryset) for queryset in chained.values())
    with django_assert_num_queries(5):
        assert [q.pk for q in chained["filter"]] == [first.pk, second.pk]
        assert first.pk not in [q.pk for q in chained["exclude"]]
        assert [q.pk for q in chained["order_by"]] == [q.pk for q in reversed(questions)]
        assert len(chained["distinct"]) == 5
        assert len(chained["all"]) == 5


def test_get_by_pk_costs_no_query_when_warm(cache, questions, django_assert_num_queries):
    target = questions[2]
    queryset = cached_questions(cache)
    with django_assert_num_queries(0):
        for lookup in ({"pk": target.pk}, {"id": target.pk}, {"pk": str(target.pk)}):
            item = queryset.get(**lookup)
            assert (item.pk, item.question_text) == (target.pk, "Question 2?")


def test_get_missing_or_malformed_pk_raises_as_the_real_queryset(
    cache, questions, django_assert_num_queries
):
    queryset = cached_questions(cache)
    with pytest.raises(ValueError) as real:
        Question.objects.get(pk="not-a-number")
    with django_assert_num_queries(0), pytest.raises(ValueError) as cached:
        queryset.get(pk="not-a-number")
    assert str(cached.value) == str(real.value)
    with pytest.raises(Question.DoesNotExist):
        queryset.get(pk=999_999)


def test_get_by_other_lookups_queries_primary_keys_first(
    cache, questions, django_assert_num_queries
):
    queryset = cached_questions(cache)
    with django_assert_num_queries(1):
        assert queryset.get(question_text="Question 3?").pk == questions[3].pk
    with django_assert_num_queries(1), pytest.raises(Question.MultipleObjectsReturned):
        queryset.get(question_text__startswith="Question")
    with pytest.raises(Question.DoesNotExist):
        queryset.get(question_text="nope")


def test_get_by_pk_respects_the_wrapped_filters(cache, questions, django_assert_num_queries):
    queryset = cached_questions(cache).exclude(pk=questions[0].pk)
    with django_assert_num_queries(1), pytest.raises(Question.DoesNotExist):
        queryset.get(pk=questions[0].pk)
    with django_assert_num_queries(1):
        assert queryset.get(pk=questions[1].pk).pk == questions[1].pk
    with pytest.raises(Question.DoesNotExist):
        cached_questions(cache).none().get(pk=questions[1].pk)


def test_slicing_is_lazy_until_evaluated(cache, questions, django_assert_num_queries):
    queryset = cached_questions(cache)
    with django_assert_num_queries(0):
        page = queryset[1:3]
    assert isinstance(page, CachedQueryset)
    with django_assert_num_queries(1):
        assert [q.pk for q in page] == [questions[1].pk, questions[2].pk]


def test_slicing_known_keys_costs_nothing(cache, questions, django_assert_num_queries):
    queryset = cached_questions(cache)
    queryset.pks  # noqa: B018 (load the keys)
    with django_assert_num_queries(0):
        assert [q.pk for q in queryset[3:]] == [questions[3].pk, questions[4].pk]
        assert queryset[-1].pk == questions[4].pk


def test_integer_index(cache, questions, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert cached_questions(cache)[2].pk == questions[2].pk
    with pytest.raises(IndexError):
        cached_questions(cache)[10]
    with pytest.raises(TypeError):
        cached_questions(cache)["a"]


def test_none_is_empty_without_queries(cache, questions, django_assert_num_queries):
    with django_assert_num_queries(0):
        empty = cached_questions(cache).none()
        assert list(empty) == []
        assert empty.count() == 0
        assert not empty.exists()


def test_passthrough_attributes(cache):
    queryset = Question.objects.filter(question_text="x")
    cached = CachedQueryset(cache, queryset)
    assert cached.model is Question
    assert cached.query is queryset.query
    assert cached.ordered is True  # Meta.ordering
    assert cached.order_by().ordered is False
    assert cached.db == "default"


def test_other_values_lists_come_from_the_database(cache, questions):
    texts = cached_questions(cache).values_list("question_text", flat=True)
    assert list(texts) == [f"Question {n}?" for n in range(5)]


def test_fixed_primary_keys_keep_their_order_and_skip_missing_rows(cache, questions):
    pks = [questions[3].pk, 999_999, questions[0].pk]
    queryset = cached_questions(cache, primary_keys=pks)
    assert [q.pk for q in queryset] == [questions[3].pk, questions[0].pk]
    assert queryset.count() == 3  # keys as given; a vanished row is simply not yielded
    with pytest.raises(TypeError, match="fixed list of primary keys"):
        queryset.filter(pk=1)
    with pytest.raises(Question.DoesNotExist):
        queryset.get(pk=questions[1].pk)
    assert queryset.get(pk=questions[3].pk).pk == questions[3].pk


def test_usable_inside_exists_as_drf_search_does(cache, questions):
    inner = cached_questions(cache).filter(pk=OuterRef("pk"), choices__choice_text="Answer 1")
    found = Question.objects.filter(Exists(inner))
    assert sorted(found.values_list("pk", flat=True)) == sorted(q.pk for q in questions)


def test_django_paginator_reads_a_page(cache, questions, django_assert_num_queries):
    paginator = Paginator(cached_questions(cache), 2)
    with django_assert_num_queries(2):  # the count, then the page's primary keys
        page = paginator.page(2)
        assert [q.pk for q in page] == [questions[2].pk, questions[3].pk]


def test_refuses_what_is_not_a_queryset(cache):
    with pytest.raises(TypeError, match="needs a real QuerySet"):
        CachedQueryset(cache, None)


# -- CachedModel --------------------------------------------------------------------------
@pytest.fixture
def cached_choice(cache, poll):
    native = cache.get_instances([("Choice", poll["redis"].pk, None)])
    return CachedModel(Choice, native[("Choice", poll["redis"].pk)][0])


def test_cached_model_reads_like_the_instance(cached_choice, poll):
    choice = poll["redis"]
    assert cached_choice.pk == cached_choice.id == choice.pk
    assert cached_choice.choice_text == "Redis"
    assert cached_choice.question == PkOnlyModel(None, Question, choice.question_id)
    assert cached_choice.question_id == choice.question_id
    assert cached_choice.serializable_value("question") == choice.question_id
    assert cached_choice.serializable_value("choice_text") == "Redis"
    assert cached_choice == choice
    assert hash(cached_choice) == hash((Choice, choice.pk))
    assert cached_choice._meta is Choice._meta


def test_cached_model_is_read_only_and_strict(cached_choice):
    with pytest.raises(AttributeError, match="read-only"):
        cached_choice.choice_text = "changed"
    with pytest.raises(AttributeError, match="no attribute 'votes'"):
        cached_choice.votes  # noqa: B018


def test_a_model_attribute_the_cache_does_not_store_is_read_from_the_row(
    cache, poll, caplog, django_assert_num_queries, monkeypatch
):
    monkeypatch.setattr(models_module, "_loaded_for", set())  # warnings are once per process
    alice = poll["alice"]
    native = cache.get_instances([("User", alice.pk, None)])[("User", alice.pk)][0]
    cached = CachedModel(User, native)
    assert "is_active" not in native
    warnings = caplog.at_level("WARNING", logger="drf_instcache.core.lookalikes")
    with warnings, django_assert_num_queries(1):  # the row, once for every attribute it lacks
        assert cached.is_active is True
        assert cached.get_full_name() == alice.get_full_name()
        assert cached.is_active is True
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 2 and "User.is_active" in warned[0]
    with pytest.raises(AttributeError, match="no attribute 'no_such_thing'"):
        cached.no_such_thing  # noqa: B018


class ChoiceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Choice
        fields = ("id", "question", "choice_text", "voters")


class QuestionSerializer(serializers.ModelSerializer):
    choices = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = Question
        fields = ("id", "question_text", "pub_date", "choices")


class UserSerializer(serializers.ModelSerializer):
    created = serializers.DateTimeField(source="date_joined", read_only=True)
    votes = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = User
        fields = ("id", "username", "created", "votes")


@pytest.mark.parametrize(
    ("serializer_class", "model", "name"),
    [
        (ChoiceSerializer, Choice, "redis"),
        (QuestionSerializer, Question, "question"),
        (UserSerializer, User, "bob"),
    ],
)
def test_drf_renders_cached_models_exactly_like_instances(
    cache, poll, serializer_class, model, name, django_assert_num_queries
):
    instance = poll[name]
    expected = serializer_class(model.objects.get(pk=instance.pk)).data
    cache.get_instances([(model.__name__, instance.pk, None)])  # warm the cache
    with django_assert_num_queries(0):
        cached_instance = CachedQueryset(cache, model.objects.all()).get(pk=instance.pk)
        cached = serializer_class(cached_instance).data
    assert cached == expected


def test_drf_list_of_cached_models_costs_only_the_key_query(
    cache, questions, django_assert_num_queries
):
    with django_assert_num_queries(1):
        data = QuestionSerializer(cached_questions(cache), many=True).data
    assert [item["id"] for item in data] == [q.pk for q in questions]
    assert all(len(item["choices"]) == 2 for item in data)


# -- PkOnlyModel / PkOnlyQueryset ----------------------------------------------------------
def test_pk_only_model(poll):
    related = PkOnlyModel(None, Question, poll["question"].pk)
    assert related.pk == related.id == poll["question"].pk
    assert related.serializable_value("pk") == poll["question"].pk
    assert related == poll["question"]
    assert related != PkOnlyModel(None, Choice, poll["question"].pk)
    assert len({related, PkOnlyModel(None, Question, poll["question"].pk)}) == 1
    with pytest.raises(AttributeError, match="knows only its primary key"):
        related.question_text  # noqa: B018


def test_pk_only_queryset():
    related = PkOnlyQueryset(None, Choice, [4, 2, 9])
    assert related.all() is related
    assert [item.pk for item in related] == [4, 2, 9]
    assert all(isinstance(item, PkOnlyModel) and item.model is Choice for item in related)
    assert len(related) == related.count() == 3
    assert related.exists()
    assert not PkOnlyQueryset(None, Choice, []).exists()
    assert related[1] == PkOnlyModel(None, Choice, 2)
    assert related[1:] == PkOnlyQueryset(None, Choice, [2, 9])
    assert related.values_list("pk", flat=True) == related.values_list("id", flat=True) == [4, 2, 9]
    with pytest.raises(TypeError, match="knows only primary keys"):
        related.values_list("choice_text", flat=True)
    with pytest.raises(TypeError, match="knows only primary keys"):
        related.values_list("pk")
