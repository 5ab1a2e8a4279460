"""Writes drop exactly the rendered entries they make stale, on every backend.

Each test warms every fast endpoint, writes through the ORM (the signals fire and the
deletions run on commit), then demands that every list and retrieve answer what plain
DRF answers now. Some tests also look at the backend to show an entry was *kept*: the
dependency map is precise, not "drop everything".
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import transaction

from drf_instcache import rendered
from drf_instcache import settings as instcache_settings
from example.polls.models import Choice, Question
from example.polls.views import FastQuestionViewSet
from tests.fastpath.conftest import Polls, answers, every_backend

pytestmark = pytest.mark.usefixtures("list_queries")

RESOURCES = ("users", "questions", "choices", "polls")


def everything(api, root: str) -> dict[str, object]:
    """Every list and every retrieve of the API under ``root``, parsed."""
    return answers(api, root, RESOURCES)


def assert_fresh(api) -> None:
    """The fast API answers what plain DRF answers now (read twice: cold parts, warm)."""
    plain = everything(api, "/api/plain/")
    assert everything(api, "/api/fast/") == plain
    assert everything(api, "/api/fast/") == plain


def stored(view_class: type, pk) -> bytes | None:
    """The raw bytes of a (non-varying) rendered entry, read from the backend."""
    plan = rendered.plan_for_view(view_class)
    key = plan.key(str(pk))
    return instcache_settings.get_backend().get_many([key]).get(key)


@pytest.fixture
def warm(api, polls: Polls) -> Polls:
    assert_fresh(api)
    return polls


@every_backend
def test_editing_a_question(api, warm: Polls):
    question = warm.questions[0]
    question.question_text = "Edited?"
    question.save()
    assert api.get(f"/api/fast/polls/{question.pk}/").json()["question_text"] == "Edited?"
    assert_fresh(api)


@every_backend
def test_creating_moving_and_deleting_a_choice(api, warm: Polls):
    first, second = warm.questions[:2]
    choice = Choice.objects.create(question=first, choice_text="New")
    assert_fresh(api)
    choice.question = second
    choice.save()
    assert choice.pk not in api.get(f"/api/fast/questions/{first.pk}/").json()["choices"]
    assert choice.pk in api.get(f"/api/fast/questions/{second.pk}/").json()["choices"]
    assert_fresh(api)
    choice.delete()
    assert_fresh(api)


@every_backend
def test_editing_a_choice_drops_what_embeds_it_and_keeps_what_lists_its_pk(api, warm: Polls):
    choice = warm.choices[0]
    question = choice.question
    assert stored(FastQuestionViewSet, question.pk) is not None
    choice.choice_text = "Reworded"
    choice.save()
    # The question shows only the choice's pk: its entry stays. The poll embeds the text.
    assert stored(FastQuestionViewSet, question.pk) is not None
    poll = api.get(f"/api/fast/polls/{question.pk}/").json()
    assert "Reworded" in [each["choice_text"] for each in poll["choices"]]
    assert_fresh(api)


@every_backend
def test_many_to_many_changes_from_both_sides(api, warm: Polls):
    user, choice = warm.users[0], warm.choices[4]
    choice.voters.add(user)
    assert choice.pk in api.get(f"/api/fast/users/{user.pk}/").json()["votes"]
    assert_fresh(api)
    user.votes.remove(choice)
    assert_fresh(api)
    user.votes.clear()
    assert api.get(f"/api/fast/users/{user.pk}/").json()["votes"] == []
    assert_fresh(api)
    choice.voters.set(warm.users)
    assert_fresh(api)
    choice.voters.clear()
    assert_fresh(api)


@every_backend
def test_renaming_a_user_reaches_the_polls_listing_their_name(api, warm: Polls):
    user = warm.users[1]
    user.username = "renamed"
    user.save()
    names = [
        name
        for poll in api.get("/api/fast/polls/").json()["results"]
        for choice in poll["choices"]
        for name in choice["voter_names"]
    ]
    assert "renamed" in names
    assert_fresh(api)


@every_backend
def test_deleting_rows_that_others_show(api, warm: Polls):
    warm.users[2].delete()  # its votes vanish without an m2m signal
    assert_fresh(api)
    Question.objects.get(pk=warm.questions[1].pk).delete()  # cascades to its choices
    assert_fresh(api)


def test_a_rolled_back_write_drops_nothing(api, warm: Polls):
    question = warm.questions[0]
    before = stored(FastQuestionViewSet, question.pk)
    with pytest.raises(RuntimeError), transaction.atomic():
        Question._base_manager.filter(pk=question.pk).update(question_text="never")
        Question.objects.get(pk=question.pk).save()
        raise RuntimeError("roll back")
    assert stored(FastQuestionViewSet, question.pk) == before
    assert_fresh(api)


def test_deletions_wait_for_the_commit(api, warm: Polls):
    question = warm.questions[0]
    with transaction.atomic():
        question.question_text = "Committed?"
        question.save()
        assert stored(FastQuestionViewSet, question.pk) is not None
    assert stored(FastQuestionViewSet, question.pk) is None
    assert_fresh(api)


@every_backend
def test_every_host_variant_of_a_hyperlinked_entry_is_dropped(api, warm: Polls):
    question = warm.questions[0]
    hosts = [{"HTTP_HOST": "localhost"}, {"HTTP_HOST": "127.0.0.1"}, {"secure": True}]
    for extra in hosts:
        poll = api.get(f"/api/fast/polls/{question.pk}/", **extra).json()
        plain = api.get(f"/api/plain/polls/{question.pk}/", **extra).json()
        assert poll == plain
    assert (
        api.get(f"/api/fast/polls/{question.pk}/", secure=True)
        .json()["url"]
        .startswith("https://testserver/")
    )
    question.question_text = "Seen by every host?"
    question.save()
    for extra in hosts:
        poll = api.get(f"/api/fast/polls/{question.pk}/", **extra).json()
        assert poll == api.get(f"/api/plain/polls/{question.pk}/", **extra).json()
        assert poll["question_text"] == "Seen by every host?"


def test_invalidate_instances_covers_writes_without_signals(api, warm: Polls):
    question = warm.questions[0]
    Question._base_manager.filter(pk=question.pk).update(question_text="Bulk")  # no signal
    assert api.get(f"/api/fast/questions/{question.pk}/").json()["question_text"] != "Bulk"
    from drf_instcache.rendered_signals import invalidate_instances

    assert invalidate_instances(Question, [question.pk]) >= 2  # questions and polls entries
    assert api.get(f"/api/fast/questions/{question.pk}/").json()["question_text"] == "Bulk"
    assert_fresh(api)


def test_users_created_elsewhere_reach_the_polls(api, warm: Polls):
    choice = warm.choices[0]
    newcomer = User.objects.create(username="newcomer")
    choice.voters.add(newcomer)
    poll = api.get(f"/api/fast/polls/{choice.question_id}/").json()
    assert "newcomer" in [n for c in poll["choices"] for n in c["voter_names"]]
    assert_fresh(api)
