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
