"""After a write, the next read returns the new data: the signal helpers at work.

Writes go through the API (as clients make them) or the ORM (as management commands and
the shell do); reads go through the cached API. Every cascade of PollCache is covered:
Choice -> Question, Choice <-> User through the voters m2m (from either side, with add,
remove, set and clear), deletes, and a foreign key moved from one row to another.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core import serializers
from django.db import transaction

from example.polls.models import Choice, Question
from tests.api.conftest import Polls, cached_bytes, every_backend


def read(api, resource: str, pk) -> dict:
    response = api.get(f"/api/{resource}/{pk}/")
    assert response.status_code == 200, response.content
    return response.json()


def warm(api, polls: Polls) -> None:
    for resource in ("questions", "choices", "users"):
        assert api.get(f"/api/{resource}/").status_code == 200


def voters_of(api, choice: Choice) -> list[int]:
    return read(api, "choices", choice.pk)["voters"]


def votes_of(api, user: User) -> list[int]:
    return read(api, "users", user.pk)["votes"]


# -- Choice -> Question ---------------------------------------------------------------------
@every_backend
def test_new_choice_appears_in_its_question(api, polls: Polls):
    warm(api, polls)
    question = polls.questions[2]
    choice = Choice.objects.create(question=question, choice_text="late entry")
    assert choice.pk in read(api, "questions", question.pk)["choices"]


def test_choice_moved_to_another_question_leaves_the_old_one(api, polls: Polls):
    warm(api, polls)
    choice, old, new = polls.choices[0], polls.questions[0], polls.questions[1]
    response = api.patch(f"/api/choices/{choice.pk}/", {"question": new.pk}, format="json")
    assert response.status_code == 200, response.content
    assert choice.pk not in read(api, "questions", old.pk)["choices"]
    assert choice.pk in read(api, "questions", new.pk)["choices"]
    assert read(api, "choices", choice.pk)["question"] == new.pk


def test_choice_moved_with_the_orm(api, polls: Polls):
    warm(api, polls)
    choice = Choice.objects.get(pk=polls.choices[5].pk)
    choice.question = polls.questions[0]
    choice.save()
    assert choice.pk in read(api, "questions", polls.questions[0].pk)["choices"]
    assert choice.pk not in read(api, "questions", polls.questions[2].pk)["choices"]


# -- m2m voters <-> votes -------------------------------------------------------------------
@every_backend
def test_voters_changed_through_the_api_update_the_users(api, polls: Polls):
    warm(api, polls)
    choice = polls.choices[0]
    before = set(voters_of(api, choice))
    newcomer = next(user for user in polls.users if user.pk not in before)
    dropped = next(iter(before))
    response = api.patch(f"/api/choices/{choice.pk}/", {"voters": [newcomer.pk]}, format="json")
    assert response.status_code == 200, response.content
    assert voters_of(api, choice) == [newcomer.pk]
    assert choice.pk in votes_of(api, newcomer)
    assert choice.pk not in votes_of(api, User.objects.get(pk=dropped))


def test_votes_changed_from_the_user_side_update_the_choices(api, polls: Polls):
    warm(api, polls)
    user = polls.users[0]
    chosen = [polls.choices[4].pk, polls.choices[5].pk]
    previous = votes_of(api, user)
    response = api.patch(f"/api/users/{user.pk}/", {"votes": chosen}, format="json")
    assert response.status_code == 200, response.content
    assert votes_of(api, user) == chosen
    for pk in chosen:
        assert user.pk in voters_of(api, Choice(pk=pk))
    for pk in set(previous) - set(chosen):
        assert user.pk not in voters_of(api, Choice(pk=pk))


@pytest.mark.parametrize("side", ["choice", "user"])
def test_m2m_add_remove_and_clear_with_the_orm(api, polls: Polls, side: str):
    warm(api, polls)
    choice, user = Choice.objects.get(pk=polls.choices[3].pk), polls.users[0]
    assert user.pk not in voters_of(api, choice)

    if side == "choice":
        choice.voters.add(user)
    else:
        user.votes.add(choice)
    assert user.pk in voters_of(api, choice)
    assert choice.pk in votes_of(api, user)

    if side == "choice":
        choice.voters.remove(user)
    else:
        user.votes.remove(choice)
    assert user.pk not in voters_of(api, choice)
    assert choice.pk not in votes_of(api, user)

    everyone = [*choice.voters.all(), user]
    assert len(everyone) == 2
    choice.voters.set(everyone)
    assert sorted(voters_of(api, choice)) == sorted(u.pk for u in everyone)
    if side == "choice":
        choice.voters.clear()
        for voter in everyone:
            assert choice.pk not in votes_of(api, voter)
        assert voters_of(api, choice) == []
    else:
        cleared = list(user.votes.values_list("pk", flat=True))
        user.votes.clear()
        assert votes_of(api, user) == []
        for pk in cleared:
            assert user.pk not in voters_of(api, Choice(pk=pk))


# -- deletes ------------------------------------------------------------------------------
@every_backend
def test_deleting_a_user_removes_it_from_the_choices_it_voted_for(api, polls: Polls):
    warm(api, polls)
    user = polls.users[1]
    voted = votes_of(api, user)
    assert voted
    assert api.delete(f"/api/users/{user.pk}/").status_code == 204
    assert api.get(f"/api/users/{user.pk}/").status_code == 404
    for pk in voted:
        assert user.pk not in voters_of(api, Choice(pk=pk))


def test_queryset_delete_of_several_rows(api, polls: Polls):
    warm(api, polls)
    doomed = [choice.pk for choice in polls.choices[:3]]
    Choice.objects.filter(pk__in=doomed).delete()
    for pk in doomed:
        assert api.get(f"/api/choices/{pk}/").status_code == 404
    for user in polls.users:
        assert not set(votes_of(api, user)) & set(doomed)
    assert read(api, "questions", polls.questions[0].pk)["choices"] == []


# -- transactions -------------------------------------------------------------------------
class Rollback(Exception):
    pass


@every_backend
def test_a_rolled_back_transaction_leaves_the_cache_unchanged(api, polls: Polls):
    warm(api, polls)
    question, choice, user = polls.questions[0], polls.choices[0], polls.users[2]
    entries = [("question", question.pk), ("choice", choice.pk), ("user", user.pk)]
    before = {entry: cached_bytes(*entry) for entry in entries}
    assert all(before.values())
    username = user.username

    with pytest.raises(Rollback), transaction.atomic():
        Question.objects.filter(pk=question.pk).get().delete()
        user.username = "rolled-back"
        user.save()
        Choice.objects.get(pk=polls.choices[2].pk).voters.add(user)
        raise Rollback

    assert {entry: cached_bytes(*entry) for entry in entries} == before
    assert read(api, "users", user.pk)["username"] == username
    assert api.get(f"/api/questions/{question.pk}/").status_code == 200


def test_updates_wait_for_the_commit(api, polls: Polls):
    warm(api, polls)
    question = polls.questions[1]
    before = cached_bytes("question", question.pk)
    with transaction.atomic():
        Question.objects.filter(pk=question.pk).get().save()  # unchanged row
        renamed = Question.objects.get(pk=question.pk)
        renamed.question_text = "Committed?"
        renamed.save()
        assert cached_bytes("question", question.pk) == before  # not yet: no commit
    assert read(api, "questions", question.pk)["question_text"] == "Committed?"


def test_a_rolled_back_savepoint_only_drops_its_own_updates(api, polls: Polls):
    warm(api, polls)
    kept, dropped = polls.questions[0], polls.questions[1]
    with transaction.atomic():
        Question.objects.filter(pk=kept.pk).get().delete()
        with pytest.raises(Rollback), transaction.atomic():
            Question.objects.filter(pk=dropped.pk).get().delete()
            raise Rollback
    assert api.get(f"/api/questions/{kept.pk}/").status_code == 404
    assert api.get(f"/api/questions/{dropped.pk}/").status_code == 200


def test_raw_saves_from_fixtures_are_ignored(api, polls: Polls):
    warm(api, polls)
    question = Question.objects.get(pk=polls.questions[0].pk)
    before = cached_bytes("question", question.pk)
    question.question_text = "Loaded from a fixture"
    fixture = serializers.serialize("json", [question])
    for loaded in serializers.deserialize("json", fixture):
        loaded.save()  # what loaddata does: Model.save_base(raw=True)
    assert Question.objects.get(pk=question.pk).question_text == "Loaded from a fixture"
    assert cached_bytes("question", question.pk) == before
