"""Pagination, filter backends, lookup fields and permissions behave as in plain DRF.

Every endpoint under ``/t/`` has a plain twin under ``/t/plain/``; the cached one must
give the same status and the same body.
"""

from __future__ import annotations

import json
import warnings

import pytest
from django.contrib.auth.models import User
from django.core.paginator import UnorderedObjectListWarning

from drf_instcache.models import CachedModel
from tests.api.conftest import Polls, make_polls
from tests.api.urls import SEEN_BY_PERMISSION

pytestmark = pytest.mark.urls("tests.api.urls")


def same_as_plain(api, path: str, status: int = 200):
    """GET ``/t/<path>`` twice (cold, warm) and ``/t/plain/<path>``; all must agree.

    Pagination links name their own endpoint, so ``/t/plain/`` reads as ``/t/`` there.
    """
    plain = api.get(f"/t/plain/{path}")
    assert plain.status_code == status, (path, plain.status_code, plain.content[:300])
    expected = json.loads(plain.content.decode().replace("/t/plain/", "/t/"))
    for _ in range(2):
        cached = api.get(f"/t/{path}")
        assert cached.status_code == status, (path, cached.status_code, cached.content[:300])
        assert cached.json() == expected
    return expected


@pytest.fixture
def many_polls() -> Polls:
    return make_polls(questions=23, choices=2, users=4)


# -- pagination ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "query", ["", "?page=2", "?page=5", "?page_size=7&page=3", "?page_size=1000"]
)
def test_page_number_pagination(api, many_polls: Polls, query: str):
    body = same_as_plain(api, f"search-questions/{query}")
    assert body["count"] == 23


def test_page_out_of_range_is_404_like_plain(api, many_polls: Polls):
    same_as_plain(api, "search-questions/?page=99", status=404)
    same_as_plain(api, "search-questions/?page=zero", status=404)


@pytest.mark.parametrize(
    "query", ["", "?limit=5", "?limit=5&offset=10", "?offset=20", "?limit=3&offset=100"]
)
def test_limit_offset_pagination(api, many_polls: Polls, query: str):
    body = same_as_plain(api, f"limit-questions/{query}")
    assert body["count"] == 23


def test_limit_offset_pages_are_the_right_rows(api, many_polls: Polls):
    body = api.get("/t/limit-questions/?limit=3&offset=10").json()
    assert [row["id"] for row in body["results"]] == [
        question.pk for question in many_polls.questions[10:13]
    ]


def test_ordered_querysets_paginate_without_warning(api, many_polls: Polls):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnorderedObjectListWarning)
        for url in ("/api/questions/", "/api/users/", "/t/search-questions/?ordering=-pub_date"):
            assert api.get(url).status_code == 200
        assert api.get("/t/limit-questions/?limit=2").status_code == 200


def test_an_unordered_queryset_warns_exactly_as_plain_drf(api, many_polls: Polls):
    for url in ("/t/plain/unordered-users/", "/t/unordered-users/"):
        with pytest.warns(UnorderedObjectListWarning):
            assert api.get(url).status_code == 200


# -- filter backends ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "query",
    [
        "?ordering=-pub_date",
        "?ordering=question_text",
        "?ordering=-id&page=2",
        "?ordering=not_a_field",
    ],
)
def test_ordering_filter(api, many_polls: Polls, query: str):
    same_as_plain(api, f"search-questions/{query}")


def test_ordering_is_applied(api, many_polls: Polls):
    body = api.get("/t/search-questions/?ordering=-pub_date&page_size=3").json()
    newest = sorted(many_polls.questions, key=lambda question: question.pub_date)[-3:]
    assert [row["id"] for row in body["results"]] == [question.pk for question in newest[::-1]]


@pytest.mark.parametrize(
    "query",
    [
        "?search=Question 1",
        "?search=answer 1",  # across the reverse relation: needs DISTINCT
        "?search=nothing matches this",
        "?search=Question 2&ordering=-pub_date",
    ],
)
def test_search_filter(api, many_polls: Polls, query: str):
    same_as_plain(api, f"search-questions/{query}")


def test_search_across_a_relation_lists_each_row_once(api, many_polls: Polls):
    body = api.get("/t/search-questions/?search=answer&page_size=100").json()
    ids = [row["id"] for row in body["results"]]
    assert len(ids) == len(set(ids)) == body["count"] == 23


@pytest.mark.parametrize(
    "query",
    [
        "?question_text=Question%207%3F",
        "?pub_date__gte=2024-05-01T20:00:00Z",
        "?pub_date__gte=2024-05-01T13:00:00Z&pub_date__lt=2024-05-01T16:00:00Z",
        "?pub_date__gte=2024-05-01T13:00:00Z&search=Question 1&ordering=-id",
    ],
)
def test_django_filter_backend(api, many_polls: Polls, query: str):
    same_as_plain(api, f"search-questions/{query}")


def test_django_filter_selects_the_right_rows(api, many_polls: Polls):
    body = api.get("/t/search-questions/?question_text=Question%207%3F").json()
    assert [row["id"] for row in body["results"]] == [many_polls.questions[7].pk]
    body = api.get(
        "/t/search-questions/?pub_date__gte=2024-05-01T13:00:00Z&pub_date__lt=2024-05-01T16:00:00Z"
    ).json()
    assert [row["question_text"] for row in body["results"]] == [
        "Question 1?",
        "Question 2?",
        "Question 3?",
    ]


def test_invalid_filter_value_is_400_like_plain(api, many_polls: Polls):
    body = same_as_plain(api, "search-questions/?pub_date__gte=not-a-date", status=400)
    assert "pub_date__gte" in body


def test_retrieve_respects_filters(api, many_polls: Polls):
    question = many_polls.questions[4]
    same_as_plain(api, f"search-questions/{question.pk}/?question_text=Question%204%3F")
    same_as_plain(api, f"search-questions/{question.pk}/?question_text=Question%205%3F", status=404)


# -- lookup field ---------------------------------------------------------------------------
def test_lookup_by_username(api, polls: Polls):
    for user in polls.users:
        body = same_as_plain(api, f"users-by-name/{user.username}/")
        assert body["id"] == user.pk
    same_as_plain(api, "users-by-name/nobody-has-this-name/", status=404)


def test_lookup_by_username_with_dots_and_at_signs(api, polls: Polls):
    user = User.objects.create(username="ada.lovelace@example")
    assert same_as_plain(api, "users-by-name/ada.lovelace@example/")["id"] == user.pk


def test_write_through_a_username_lookup(api, polls: Polls):
    user = polls.users[0]
    url = f"/t/users-by-name/{user.username}/"
    api.get(url)  # warm
    response = api.patch(url, {"username": "renamed"}, format="json")
    assert response.status_code == 200, response.content
    assert api.get("/t/users-by-name/renamed/").json()["username"] == "renamed"
    assert api.get(url).status_code == 404
    assert api.get(f"/api/users/{user.pk}/").json()["username"] == "renamed"


# -- permissions ------------------------------------------------------------------------------
def test_permissions_deny_anonymous_like_plain(api, polls: Polls):
    same_as_plain(api, "self-only-users/", status=403)
    same_as_plain(api, f"self-only-users/{polls.users[0].pk}/", status=403)


def test_object_permissions_see_the_cached_instance(api, polls: Polls):
    me, other = polls.users[0], polls.users[1]
    api.force_authenticate(me)
    SEEN_BY_PERMISSION.clear()
    assert api.get(f"/t/self-only-users/{me.pk}/").json()["id"] == me.pk
    assert api.get(f"/t/self-only-users/{other.pk}/").status_code == 403
    assert [type(obj) for obj in SEEN_BY_PERMISSION] == [CachedModel, CachedModel]
    assert [obj.pk for obj in SEEN_BY_PERMISSION] == [me.pk, other.pk]
    same_as_plain(api, f"self-only-users/{me.pk}/")
    same_as_plain(api, f"self-only-users/{other.pk}/", status=403)


def test_object_permissions_on_writes_see_the_real_instance(api, polls: Polls):
    me, other = polls.users[0], polls.users[1]
    api.force_authenticate(me)
    SEEN_BY_PERMISSION.clear()
    response = api.patch(f"/t/self-only-users/{other.pk}/", {"username": "x"}, format="json")
    assert response.status_code == 403
    response = api.patch(f"/t/self-only-users/{me.pk}/", {"username": "me2"}, format="json")
    assert response.status_code == 200
    assert [type(obj) for obj in SEEN_BY_PERMISSION] == [User, User]
    assert api.get(f"/t/self-only-users/{me.pk}/").json()["username"] == "me2"


def test_a_per_user_queryset_never_leaks_other_rows(api, polls: Polls):
    me = polls.users[0]
    mine = set(me.votes.values_list("pk", flat=True))
    others = [choice for choice in polls.choices if choice.pk not in mine]
    assert mine and others
    for choice in polls.choices:  # warm every choice in the cache
        assert api.get(f"/api/choices/{choice.pk}/").status_code == 200

    api.force_authenticate(me)
    for choice in others:
        same_as_plain(api, f"my-votes/{choice.pk}/", status=404)
    for pk in mine:
        assert same_as_plain(api, f"my-votes/{pk}/")["id"] == pk
    listed = same_as_plain(api, "my-votes/")
    assert {row["id"] for row in listed["results"]} == mine
