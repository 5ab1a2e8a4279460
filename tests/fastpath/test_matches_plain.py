"""The fast path answers what plain DRF answers, cold and warm, on every backend.

Each fast endpoint has a plain twin differing only by the mixin: the parsed bodies must
be equal, for lists (page-number, limit-offset, cursor and no pagination, with filters)
and retrieves (by pk, by another lookup field, with object permissions), and the errors
(404, 403) too.
"""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User

from tests.fastpath.conftest import Polls, every_backend, make_polls

pytestmark = pytest.mark.usefixtures("list_queries")

RESOURCES = ("users", "questions", "choices", "polls")


def body(api, url: str, status: int = 200, **extra):
    response = api.get(url, **extra)
    assert response.status_code == status, (url, response.status_code, response.content[:300])
    return response.json()


def as_fast(data):
    """Plain DRF's answer with its own links (next/previous) pointing at the fast twin."""
    text = json.dumps(data).replace("/t/plain/", "/t/fast/").replace("/api/plain/", "/api/fast/")
    return json.loads(text)


def assert_same(api, fast_url: str, plain_url: str, status: int = 200, **extra) -> None:
    """Plain DRF's answer, then the fast path's cold and warm answers: all equal."""
    plain = as_fast(body(api, plain_url, status, **extra))
    assert body(api, fast_url, status, **extra) == plain, f"cold {fast_url}"
    assert body(api, fast_url, status, **extra) == plain, f"warm {fast_url}"


@every_backend
@pytest.mark.parametrize("resource", RESOURCES)
def test_page_number_list_matches_plain_drf(api, polls: Polls, resource: str):
    assert_same(api, f"/api/fast/{resource}/", f"/api/plain/{resource}/")


@every_backend
@pytest.mark.parametrize("resource", RESOURCES)
def test_retrieve_matches_plain_drf(api, polls: Polls, resource: str):
    rows = {
        "users": polls.users,
        "questions": polls.questions,
        "choices": polls.choices,
        "polls": polls.questions,
    }[resource]
    for row in rows:
        assert_same(api, f"/api/fast/{resource}/{row.pk}/", f"/api/plain/{resource}/{row.pk}/")


@every_backend
@pytest.mark.parametrize("resource", ["limit-questions", "limit-polls"])
def test_limit_offset_list_matches_plain_drf(api, resource: str):
    make_polls(questions=7, choices=2, users=4)
    for query in ("", "?limit=3", "?limit=3&offset=3", "?limit=3&offset=6", "?offset=50"):
        assert_same(api, f"/t/fast/{resource}/{query}", f"/t/plain/{resource}/{query}")


def test_page_number_pages_and_errors_match_plain_drf(api):
    make_polls(questions=205, choices=1, users=2)  # pages of 100: 100, 100, 5
    for query in ("?page=2", "?page=3", "?page=last"):
        assert_same(api, f"/api/fast/questions/{query}", f"/api/plain/questions/{query}")
    for query in ("?page=4", "?page=0", "?page=x"):
        assert_same(api, f"/api/fast/questions/{query}", f"/api/plain/questions/{query}", 404)


def test_unpaginated_list_matches_plain_drf(api, polls: Polls):
    assert_same(api, "/t/fast/all-polls/", "/t/plain/all-polls/")


def test_cursor_pagination_matches_plain_drf(api):
    make_polls(questions=10, choices=1, users=2)
    plain_url, fast_url = "/t/plain/cursor-questions/", "/t/fast/cursor-questions/"
    pages = 0
    while plain_url:
        plain = body(api, plain_url)
        fast = body(api, fast_url)
        assert fast["results"] == plain["results"]
        # The cursors encode positions, not paths: follow each side's own links.
        assert (fast["next"] is None) == (plain["next"] is None)
        plain_url, fast_url = plain["next"], fast["next"]
        pages += 1
    assert pages == 3


@every_backend
def test_search_and_ordering_match_plain_drf(api, polls: Polls):
    for query in ("?search=answer+1", "?search=Question+2", "?ordering=-pub_date", "?search=zz"):
        assert_same(api, f"/t/fast/search-questions/{query}", f"/t/plain/search-questions/{query}")


def test_lookup_by_username_matches_plain_drf(api, polls: Polls):
    user = polls.users[1]
    assert_same(
        api, f"/t/fast/users-by-name/{user.username}/", f"/t/plain/users-by-name/{user.username}/"
    )
    assert_same(api, "/t/fast/users-by-name/nobody/", "/t/plain/users-by-name/nobody/", 404)


def test_missing_and_malformed_pks_are_404(api, polls: Polls):
    for pk in ("999999", "abc", "1.5"):
        assert_same(api, f"/api/fast/questions/{pk}/", f"/api/plain/questions/{pk}/", 404)


def test_object_permissions_are_checked_on_every_request(api, polls: Polls):
    me, other = polls.users[0], polls.users[1]
    assert_same(api, f"/t/fast/self-only-users/{me.pk}/", f"/t/plain/self-only-users/{me.pk}/", 403)
    api.force_authenticate(me)
    assert_same(api, f"/t/fast/self-only-users/{me.pk}/", f"/t/plain/self-only-users/{me.pk}/")
    # Warm now: the cached entry of another user is still refused.
    api.force_authenticate(other)
    body(api, f"/t/fast/self-only-users/{other.pk}/")
    api.force_authenticate(me)
    assert_same(
        api, f"/t/fast/self-only-users/{other.pk}/", f"/t/plain/self-only-users/{other.pk}/", 403
    )


def test_per_user_querysets_decide_which_rows(api, polls: Polls):
    for user in polls.users:
        api.force_authenticate(user)
        assert_same(api, "/t/fast/my-votes/", "/t/plain/my-votes/")
        votes = body(api, "/t/fast/my-votes/")["results"]
        assert {choice["id"] for choice in votes} == set(user.votes.values_list("pk", flat=True))


def test_browsable_api_and_indented_json_work_from_decoded_data(api, polls: Polls):
    question = polls.questions[0]
    api.get("/api/fast/polls/")  # warm
    page = api.get("/api/fast/polls/", HTTP_ACCEPT="text/html")
    assert page.status_code == 200
    assert "text/html" in page["Content-Type"]
    assert question.question_text in page.content.decode()
    assert f"/api/choices/{polls.choices[0].pk}/" in page.content.decode()
    detail = api.get(f"/api/fast/polls/{question.pk}/", HTTP_ACCEPT="text/html")
    assert detail.status_code == 200 and question.question_text in detail.content.decode()

    indented = api.get("/api/fast/polls/", HTTP_ACCEPT="application/json; indent=2")
    assert b'\n  "count": 3' in indented.content
    assert indented.json() == as_fast(body(api, "/api/plain/polls/"))


def test_head_requests_are_answered(api, polls: Polls):
    assert api.head("/api/fast/questions/").status_code == 200
    assert api.head(f"/api/fast/questions/{polls.questions[0].pk}/").status_code == 200


def test_writes_through_a_fast_viewset_use_the_database(api, polls: Polls):
    user = User.objects.create_user("writer", password="x")
    api.force_authenticate(user)
    response = api.post(
        "/api/fast/questions/",
        {"question_text": "Written?", "pub_date": "2024-06-01T00:00:00Z"},
        format="json",
    )
    assert response.status_code == 201, response.content
    created = response.json()["id"]
    assert_same(api, f"/api/fast/questions/{created}/", f"/api/plain/questions/{created}/")
    response = api.patch(
        f"/api/fast/questions/{created}/", {"question_text": "Rewritten?"}, format="json"
    )
    assert response.status_code == 200
    assert body(api, f"/api/fast/questions/{created}/")["question_text"] == "Rewritten?"
    assert api.delete(f"/api/fast/questions/{created}/").status_code == 204
    assert_same(api, f"/api/fast/questions/{created}/", f"/api/plain/questions/{created}/", 404)
