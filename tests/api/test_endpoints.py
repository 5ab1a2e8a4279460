"""List, retrieve, create, update and delete through the cached API, on every backend.

The reference for "correct" is the same endpoint without the mixin (``/api/plain/``):
the cached API must answer exactly what plain DRF answers, cold and warm.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from example.polls.models import Choice, Question
from tests.api.conftest import Polls, every_backend, make_polls

RESOURCES = ("users", "questions", "choices")


def get_json(api, url: str, status: int = 200):
    response = api.get(url)
    assert response.status_code == status, (url, response.status_code, response.content[:300])
    return response.json()


@every_backend
@pytest.mark.parametrize("resource", RESOURCES)
def test_list_matches_plain_drf_cold_and_warm(api, polls: Polls, resource: str):
    plain = get_json(api, f"/api/plain/{resource}/")
    assert plain["count"] > 0
    cold = get_json(api, f"/api/{resource}/")
    warm = get_json(api, f"/api/{resource}/")
    assert cold == plain
    assert warm == plain


@every_backend
@pytest.mark.parametrize("resource", RESOURCES)
def test_retrieve_matches_plain_drf_cold_and_warm(api, polls: Polls, resource: str):
    rows = {"users": polls.users, "questions": polls.questions, "choices": polls.choices}
    for row in rows[resource]:
        plain = get_json(api, f"/api/plain/{resource}/{row.pk}/")
        assert get_json(api, f"/api/{resource}/{row.pk}/") == plain
        assert get_json(api, f"/api/{resource}/{row.pk}/") == plain


def test_representations_hold_related_primary_keys(api, polls: Polls):
    question, first, second = polls.questions[0], *polls.choices[:2]
    assert get_json(api, f"/api/questions/{question.pk}/") == {
        "id": question.pk,
        "question_text": "Question 0?",
        "pub_date": "2024-05-01T12:00:00Z",
        "choices": [first.pk, second.pk],
    }
    assert get_json(api, f"/api/choices/{first.pk}/") == {
        "id": first.pk,
        "question": question.pk,
        "choice_text": "Question 0? answer 0",
        "voters": [polls.users[0].pk],
    }
    user = polls.users[1]
    assert get_json(api, f"/api/users/{user.pk}/") == {
        "id": user.pk,
        "username": user.username,
        "created": "2024-04-30T12:00:00Z",
        "votes": [polls.choices[1].pk, polls.choices[2].pk],
    }


@every_backend
def test_create_then_read(api, polls: Polls):
    response = api.post(
        "/api/questions/", {"question_text": "New?", "pub_date": "2024-06-01T00:00:00Z"}
    )
    assert response.status_code == 201, response.content
    question_id = response.json()["id"]
    assert get_json(api, f"/api/questions/{question_id}/")["question_text"] == "New?"

    response = api.post(
        "/api/choices/",
        {"question": question_id, "choice_text": "Yes", "voters": [polls.users[0].pk]},
        format="json",
    )
    assert response.status_code == 201, response.content
    choice_id = response.json()["id"]
    assert get_json(api, f"/api/choices/{choice_id}/")["voters"] == [polls.users[0].pk]
    assert get_json(api, f"/api/questions/{question_id}/")["choices"] == [choice_id]
    assert choice_id in get_json(api, f"/api/users/{polls.users[0].pk}/")["votes"]
    assert get_json(api, "/api/questions/")["count"] == len(polls.questions) + 1


@every_backend
def test_update_then_read(api, polls: Polls):
    question = polls.questions[0]
    url = f"/api/questions/{question.pk}/"
    get_json(api, url)  # warm
    response = api.patch(url, {"question_text": "Edited?"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["question_text"] == "Edited?"
    assert get_json(api, url)["question_text"] == "Edited?"
    listed = {row["id"]: row for row in get_json(api, "/api/questions/")["results"]}
    assert listed[question.pk]["question_text"] == "Edited?"

    response = api.put(
        url, {"question_text": "Replaced?", "pub_date": "2020-01-01T00:00:00Z"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert get_json(api, url) == get_json(api, f"/api/plain/questions/{question.pk}/")
    assert get_json(api, url)["pub_date"] == "2020-01-01T00:00:00Z"


@every_backend
def test_delete_then_read(api, polls: Polls):
    question = polls.questions[0]
    choice_ids = [choice.pk for choice in polls.choices if choice.question_id == question.pk]
    voters = list(User.objects.filter(votes__in=choice_ids).distinct())
    assert voters
    for url in ("/api/questions/", "/api/choices/", "/api/users/"):
        get_json(api, url)  # warm everything

    assert api.delete(f"/api/questions/{question.pk}/").status_code == 204

    get_json(api, f"/api/questions/{question.pk}/", status=404)
    for choice_id in choice_ids:  # deleted by the cascade: gone from the cache too
        get_json(api, f"/api/choices/{choice_id}/", status=404)
    for voter in voters:
        votes = get_json(api, f"/api/users/{voter.pk}/")["votes"]
        assert not set(votes) & set(choice_ids)
    for resource in ("questions", "choices", "users"):
        assert get_json(api, f"/api/{resource}/") == get_json(api, f"/api/plain/{resource}/")


def test_delete_a_choice_removes_it_from_its_question_and_voters(api, polls: Polls):
    choice = polls.choices[1]
    voter_ids = list(choice.voters.values_list("pk", flat=True))
    assert voter_ids
    question_url = f"/api/questions/{choice.question_id}/"
    assert choice.pk in get_json(api, question_url)["choices"]
    for voter_id in voter_ids:
        assert choice.pk in get_json(api, f"/api/users/{voter_id}/")["votes"]

    assert api.delete(f"/api/choices/{choice.pk}/").status_code == 204

    assert choice.pk not in get_json(api, question_url)["choices"]
    for voter_id in voter_ids:
        assert choice.pk not in get_json(api, f"/api/users/{voter_id}/")["votes"]


def test_missing_and_malformed_keys_are_404(api, polls: Polls):
    missing = Question.objects.order_by("-pk").first().pk + 1000
    for url in (
        f"/api/questions/{missing}/",
        "/api/questions/not-a-number/",
        "/api/questions/99999999999999999999999/",
        f"/api/choices/{missing}/",
        "/api/users/abc/",
    ):
        get_json(api, url, status=404)


def test_head_reads_through_the_cache(api, polls: Polls):
    question = polls.questions[0]
    assert api.head(f"/api/questions/{question.pk}/").status_code == 200
    assert api.head("/api/questions/").status_code == 200


def test_an_empty_list(api):
    assert get_json(api, "/api/questions/") == {
        "count": 0,
        "next": None,
        "previous": None,
        "results": [],
    }


def test_make_polls_helper_is_cold(polls: Polls):
    # Guard for the other tests: bulk_create sends no signals, so nothing is cached yet.
    from tests.api.conftest import cached_bytes

    assert cached_bytes("question", polls.questions[0].pk) is None
    assert Choice.objects.count() == len(polls.choices) == 6
    assert make_polls(questions=0, users=0).questions == []
