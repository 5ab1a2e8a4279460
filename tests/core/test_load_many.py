"""load_many_with_related_pks: one query for the rows, one per relation, right answers."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.core.exceptions import FieldDoesNotExist

from drf_instcache.cache import load_many_with_related_pks
from example.polls.models import Choice, Question
from tests.core.conftest import make_questions

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("count", [3, 60])
def test_query_count_does_not_grow_with_the_rows(count, django_assert_num_queries):
    questions = make_questions(count, choices_each=3)
    with django_assert_num_queries(2):
        loaded = load_many_with_related_pks(
            Question.objects.all(), [q.pk for q in questions], ["choices"]
        )
    assert set(loaded) == {q.pk for q in questions}
    for question in questions:
        assert loaded[question.pk]._choices_pks == sorted(
            question.choices.values_list("pk", flat=True)
        )


def test_every_kind_of_to_many_relation(poll, django_assert_num_queries):
    staff = Group.objects.create(name="staff")
    poll["alice"].groups.add(staff)
    users = [poll["alice"].pk, poll["bob"].pk]
    with django_assert_num_queries(3):  # users, their votes (reverse m2m), groups (m2m)
        loaded = load_many_with_related_pks(User, users, ["votes", "groups"])
    assert loaded[poll["alice"].pk]._votes_pks == [poll["redis"].pk]
    assert loaded[poll["bob"].pk]._votes_pks == sorted([poll["redis"].pk, poll["memcached"].pk])
    assert loaded[poll["alice"].pk]._groups_pks == [staff.pk]
    assert loaded[poll["bob"].pk]._groups_pks == []

    choices = load_many_with_related_pks(Choice, [poll["redis"].pk], ["voters"])
    assert choices[poll["redis"].pk]._voters_pks == sorted(users)


def test_reverse_accessor_without_related_name(poll):
    staff = Group.objects.create(name="staff")
    poll["bob"].groups.add(staff)
    loaded = load_many_with_related_pks(Group, [staff.pk], ["user_set"])
    assert loaded[staff.pk]._user_set_pks == [poll["bob"].pk]


def test_missing_rows_are_absent_and_duplicates_collapse(poll, django_assert_num_queries):
    pk = poll["question"].pk
    with django_assert_num_queries(2):
        loaded = load_many_with_related_pks(Question, [pk, pk, 999_999], ["choices"])
    assert list(loaded) == [pk]


def test_nothing_to_load_costs_nothing(db, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert load_many_with_related_pks(Question, [], ["choices"]) == {}
    with django_assert_num_queries(1):
        assert load_many_with_related_pks(Question, [999_999], ["choices"]) == {}


def test_unknown_relation_lists_the_real_ones(poll):
    with pytest.raises(FieldDoesNotExist, match=r"no relation 'answers'.*choices"):
        load_many_with_related_pks(Question, [poll["question"].pk], ["answers"])


def test_on_postgresql_a_batch_of_pks_is_one_array_parameter(django_assert_num_queries):
    """pk IN of N literals is prepared, parsed and planned per literal; ANY of one array
    answers the same rows (a cold page of 100 asks this twice: rows, related pks)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    if connection.vendor != "postgresql":
        pytest.skip("the array form is PostgreSQL's; elsewhere it is pk__in")
    questions = make_questions(30, choices_each=2)
    wanted = [str(q.pk) for q in questions[::2]] + ["0"]  # pks as cache keys hold them
    with CaptureQueriesContext(connection) as captured:
        loaded = load_many_with_related_pks(Question.objects.all(), wanted, ["choices"])
    sql = [query["sql"] for query in captured.captured_queries]
    assert len(sql) == 2 and all("= ANY(" in each and " IN (" not in each for each in sql), sql
    assert set(loaded) == {q.pk for q in questions[::2]}
    for question in questions[::2]:
        assert loaded[question.pk]._choices_pks == sorted(
            question.choices.values_list("pk", flat=True)
        )


def test_filter_pks_answers_what_pk_in_answers(db):
    from drf_instcache.core.loading import filter_pks

    questions = make_questions(5, choices_each=1)
    pks = [questions[0].pk, questions[3].pk, 10**9]
    queryset = Question.objects.order_by("pk")
    assert list(filter_pks(queryset, pks)) == list(queryset.filter(pk__in=pks))
    assert list(filter_pks(queryset, [])) == []
    users = User.objects.order_by("pk")
    assert list(filter_pks(users, [0])) == list(users.filter(pk__in=[0]))
