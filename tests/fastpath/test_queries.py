"""What a fast request costs: queries, cache calls, serializer runs, and what is sent.

A warm list asks the database for the count and the page's keys, reads every entry with
one ``get_many`` and never runs the serializer: the body holds the cached bytes as they
were stored. A warm retrieve by pk costs no query at all. A cold list loads its misses
in one batch through ``get_queryset()``, prefetches included, whatever the page size.
"""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext

from drf_instcache import rendered
from drf_instcache import settings as instcache_settings
from example.polls.views import FastQuestionViewSet
from tests.fastpath import urls as test_urls
from tests.fastpath.conftest import every_backend, make_polls


def queries(api, url: str) -> tuple[list[str], Any]:
    with CaptureQueriesContext(connection) as captured:
        response = api.get(url)
    assert response.status_code == 200, response.content[:300]
    return [query["sql"] for query in captured.captured_queries], response


@every_backend
def test_warm_list_costs_a_count_and_a_key_query_and_runs_no_serializer(api):
    make_polls(questions=100, choices=2, users=5)
    _, cold = queries(api, "/t/fast/counted-questions/")
    assert len(cold.json()["results"]) == 100
    test_urls.RENDER_CALLS.clear()
    warm_queries, warm = queries(api, "/t/fast/counted-questions/")
    assert warm.json() == cold.json()
    assert test_urls.RENDER_CALLS == []
    count_sql, keys_sql = warm_queries
    assert "COUNT(" in count_sql.upper()
    assert "polls_choice" not in keys_sql and "question_text" not in keys_sql


@every_backend
def test_warm_retrieve_by_pk_costs_no_query(api, django_assert_num_queries):
    polls = make_polls(questions=2)
    url = f"/t/fast/counted-questions/{polls.questions[1].pk}/"
    cold = api.get(url).json()
    test_urls.RENDER_CALLS.clear()
    with django_assert_num_queries(0):
        assert api.get(url).json() == cold
    assert test_urls.RENDER_CALLS == []


def test_cold_list_costs_the_same_for_10_and_100_rows(api):
    make_polls(questions=10, choices=1, users=3)
    ten, _ = queries(api, "/api/fast/polls/")
    make_polls(questions=90, choices=1, users=3)
    hundred, _ = queries(api, "/api/fast/polls/?page=1")
    # count, keys, the missing questions, their choices, the choices' voters
    assert len(ten) == len(hundred) == 5


def test_one_read_and_one_write_per_list(api, counting_backend):
    make_polls(questions=30, choices=1, users=3)
    api.get("/api/fast/questions/")
    reads = [call for call in counting_backend if call[0] == "get_many"]
    writes = [call for call in counting_backend if call[0] != "get_many"]
    assert reads == [("get_many", 30)]
    # Leases: one add claims the 30 keys, one compare-and-set fills them.
    assert writes == [("add_many", 30), ("compare_and_set_many", 30)]
    counting_backend.clear()
    api.get("/api/fast/questions/")
    assert counting_backend == [("get_many", 30)]


def test_the_body_holds_the_cached_bytes_verbatim(api):
    make_polls(questions=4, choices=1, users=2)
    response = api.get("/api/fast/questions/")
    pks = [row["id"] for row in response.json()["results"]]
    plan = rendered.plan_for_view(FastQuestionViewSet)
    keys = [plan.key(str(pk)) for pk in pks]
    entries = instcache_settings.get_backend().get_many(keys)
    payloads = [bytes(plan.payload(entries[key])) for key in keys]
    assert response.content == (
        b'{"count":4,"next":null,"previous":null,"results":[' + b",".join(payloads) + b"]}"
    )
    detail = api.get(f"/api/fast/questions/{pks[2]}/")
    assert detail.content == payloads[2]
    assert detail["Content-Type"] == "application/json"
