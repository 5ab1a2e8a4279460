"""Database queries per request: what the cache is for.

Warm reads ask the database only for primary keys (and the count, when paginated);
instances cost no query. Cold lists cost the same number of queries for 10 rows as for
100, thanks to PollCache's ``loader_many``.
"""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from drf_instcache import settings as instcache_settings
from tests.api.conftest import every_backend, make_polls

pytestmark = pytest.mark.urls("tests.api.urls")


def list_queries(api, url: str) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = api.get(url)
    assert response.status_code == 200, response.content[:300]
    return [query["sql"] for query in captured.captured_queries]


@every_backend
def test_warm_paginated_list_of_100_costs_a_count_and_a_pk_query(api, django_assert_num_queries):
    make_polls(questions=100, choices=2, users=5)
    cold = api.get("/api/questions/").json()
    assert len(cold["results"]) == 100

    with django_assert_num_queries(2) as captured:
        warm = api.get("/api/questions/").json()
    assert warm == cold
    count_sql, pks_sql = (query["sql"] for query in captured.captured_queries)
    assert "COUNT(" in count_sql.upper()
    assert "polls_choice" not in pks_sql  # instances, with their choices, came from the cache


@every_backend
def test_warm_unpaginated_list_of_100_costs_one_pk_query(api, django_assert_num_queries):
    make_polls(questions=100, choices=2, users=5)
    cold = api.get("/t/all-questions/").json()
    assert len(cold) == 100
    with django_assert_num_queries(1):
        assert api.get("/t/all-questions/").json() == cold


def test_prefetches_on_the_viewset_queryset_cost_nothing_when_warm(api, django_assert_num_queries):
    make_polls(questions=10, choices=3, users=6)
    plain = api.get("/t/plain/prefetching-choices/").json()
    assert plain["count"] == 30
    expected = json.loads(json.dumps(plain).replace("/t/plain/", "/t/"))
    assert api.get("/t/prefetching-choices/").json() == expected
    with django_assert_num_queries(2):  # count and keys: no prefetch, no join
        assert api.get("/t/prefetching-choices/").json() == expected


@every_backend
def test_warm_retrieve_costs_no_query(api, django_assert_num_queries):
    polls = make_polls(questions=2)
    urls = [
        f"/api/questions/{polls.questions[1].pk}/",
        f"/api/choices/{polls.choices[3].pk}/",
        f"/api/users/{polls.users[2].pk}/",
    ]
    cold = [api.get(url).json() for url in urls]
    for url, expected in zip(urls, cold, strict=True):
        with django_assert_num_queries(0):
            assert api.get(url).json() == expected


@pytest.mark.parametrize("resource", ["questions", "choices", "users"])
def test_cold_list_costs_the_same_for_10_and_100_rows(api, resource: str):
    make_polls(questions=10, choices=1, users=10)
    ten = list_queries(api, f"/api/{resource}/")

    instcache_settings.get_backend().clear()  # cold again, then grow the data tenfold
    make_polls(questions=90, choices=1, users=90)
    hundred = list_queries(api, f"/api/{resource}/")

    assert len(api.get(f"/api/{resource}/").json()["results"]) == 100
    assert len(ten) == len(hundred)
    # count, pks, then the batch loader: rows + one query per to-many relation
    assert len(ten) == 4, ten


def test_paginated_pages_query_only_their_keys(api, django_assert_num_queries):
    make_polls(questions=12)
    first = api.get("/t/search-questions/?page=3").json()
    assert [row["question_text"] for row in first["results"]] == ["Question 10?", "Question 11?"]
    with django_assert_num_queries(2):
        assert api.get("/t/search-questions/?page=3").json() == first


def test_filtered_retrieve_costs_one_pk_query(api, django_assert_num_queries):
    polls = make_polls(questions=2)
    voter = polls.users[0]
    choice = polls.choices[0]
    api.force_authenticate(voter)
    expected = api.get(f"/t/my-votes/{choice.pk}/").json()
    with django_assert_num_queries(1):  # the per-user filter runs; the instance is cached
        assert api.get(f"/t/my-votes/{choice.pk}/").json() == expected


def test_lookup_field_retrieve_costs_one_pk_query(api, django_assert_num_queries):
    user = make_polls().users[0]
    expected = api.get(f"/t/users-by-name/{user.username}/").json()
    with django_assert_num_queries(1):
        assert api.get(f"/t/users-by-name/{user.username}/").json() == expected
