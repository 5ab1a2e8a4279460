"""A cold page this process listed before is read from its rows, as plain DRF reads them.

The usual cold list asks the database for the page's keys, then for the missing rows by
key (four queries where plain DRF sends three). When the last read of the plan's pages
was cold and the page was seen before, the entries of the keys it held are read and
leased first; the paginator then loads the rows (count, rows, prefetch) and the misses
are stored over the leases. These tests hold it to plain DRF's answer and queries, and
to the lease rules: a write while the rows render is not cached over, a row that joined
the page since is stored through the usual read-through, a lease on a row that left the
page is released, and an error in the paginator leaves no lease behind.

Real servers and PostgreSQL when configured (``every_backend``: locmem, disk, Redis,
Memcached); the round-trip counts on a real redis-server.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from drf_instcache import rendered
from drf_instcache import settings as instcache_settings
from drf_instcache.backends.observed import BackendCall, add_observer, remove_observer
from drf_instcache.core import counters
from drf_instcache.core.leases import is_lease
from drf_instcache.core.namespaces import RENDERED_NAMESPACE
from example.polls.models import Question
from example.polls.serializers import QuestionSerializer
from example.polls.views import FastQuestionViewSet
from tests.fastpath.conftest import every_backend, make_polls
from tests.fastpath.urls import FAST_VIEWSETS

FAST, PLAIN = "/api/fast/questions/", "/api/plain/questions/"


@pytest.fixture(autouse=True)
def live_list_queries(settings) -> None:
    """The page's keys are asked of the database (no cached list queries)."""
    settings.DRF_INSTCACHE_CACHE_LIST_QUERIES = False


def empty_cache() -> None:
    instcache_settings.get_backend().clear()


def held(view_class: type, pks) -> dict[str, bytes]:
    """What the backend holds under the rendered keys of ``pks`` (by pk)."""
    plan = rendered.plan_for_view(view_class)
    keys = {plan.key(str(pk)): str(pk) for pk in pks}
    found = instcache_settings.get_backend().get_many(list(keys))
    return {keys[key]: value for key, value in found.items()}


def rows(answer) -> tuple[object, object]:
    """A limit/offset page's count and rows (its links name the fast or plain URL)."""
    return answer["count"], answer["results"]


def cold_get(api, url: str) -> tuple[object, list[str]]:
    """GET ``url`` with every entry missing: the answer and the SQL it sent."""
    empty_cache()
    with CaptureQueriesContext(connection) as queries:
        response = api.get(url)
    assert response.status_code == 200, response.content[:200]
    return response.json(), [query["sql"] for query in queries.captured_queries]


@every_backend
def test_a_cold_page_seen_before_sends_plain_drfs_queries(api):
    polls = make_polls(questions=30, choices=2, users=3)
    plain = api.get(PLAIN).json()
    first, usual = cold_get(api, FAST)  # not seen yet: keys, then rows by key
    second, direct = cold_get(api, FAST)
    assert first == second == plain
    assert len(usual) == 4
    assert len(direct) == 3, direct  # count, the page's rows, their choices
    assert "LIMIT" in direct[1] and "polls_choice" in direct[2]
    stored = held(FastQuestionViewSet, [q.pk for q in polls.questions])
    assert len(stored) == 30 and all(not is_lease(value) for value in stored.values())
    with CaptureQueriesContext(connection) as warm:
        assert api.get(FAST).json() == plain  # warm again: keys, entries
    assert len(warm) == 2


@pytest.mark.parametrize("instcache_backend", ["redis"], indirect=True)
def test_a_cold_page_seen_before_waits_for_one_round_trip(api, cache_namespace):
    make_polls(questions=30, choices=1, users=3)
    seen: list[BackendCall] = []
    api.get(FAST)
    empty_cache()
    add_observer(seen.append)
    try:
        assert api.get(FAST).json() == api.get(PLAIN).json()
    finally:
        remove_observer(seen.append)
    entry_calls = [
        (call.operation, len(call.keys))
        for call in seen
        if call.keys and call.keys[0].startswith(f"{RENDERED_NAMESPACE}:")
    ]
    assert entry_calls == [("get_many_claiming", 30), ("fill_many_quietly", 30)]


@every_backend
def test_a_write_while_the_rows_render_is_not_cached_over(api, monkeypatch):
    polls = make_polls(questions=5, choices=1, users=1)
    target = polls.questions[2]
    cold_get(api, FAST)  # seen
    represent = QuestionSerializer.to_representation
    writes: list[int] = []

    def write_while_rendering(self, instance):
        if instance.pk == target.pk and not writes:
            writes.append(instance.pk)
            changed = Question.objects.get(pk=target.pk)
            changed.question_text = "Written while rendering"
            changed.save()  # commits: the invalidation deletes the read's lease
        return represent(self, instance)

    monkeypatch.setattr(QuestionSerializer, "to_representation", write_while_rendering)
    answer, queries = cold_get(api, FAST)
    monkeypatch.undo()
    assert writes and len(queries) >= 3
    shown = {row["id"]: row["question_text"] for row in answer["results"]}
    assert shown[target.pk] == target.question_text  # the rows were read before the write
    assert target.pk not in {int(pk) for pk in held(FastQuestionViewSet, [target.pk])}
    after = api.get(FAST).json()
    assert after == api.get(PLAIN).json()
    assert {row["id"]: row["question_text"] for row in after["results"]}[target.pk] == (
        "Written while rendering"
    )


@every_backend
def test_rows_that_joined_or_left_the_page_are_handled_as_plain_drf_shows_them(api):
    polls = make_polls(questions=8, choices=1, users=1)
    url = "t/fast/limit-questions/?limit=5&offset=0"
    view_class = FAST_VIEWSETS["limit-questions"]
    cold_get(api, f"/{url}")  # seen: questions 0-4
    left, joined = polls.questions[1], polls.questions[5]
    Question._base_manager.filter(pk=left.pk).delete()  # no signal: only the page moves
    answer, queries = cold_get(api, f"/{url}")
    assert rows(answer) == rows(api.get(f"/{url.replace('fast', 'plain')}").json())
    assert [row["id"] for row in answer["results"]][-1] == joined.pk
    # count, rows, choices; then the joined row through the usual read (row, choices).
    assert len(queries) == 5, queries
    page = [q.pk for q in polls.questions if q.pk != left.pk][:5]
    stored = held(view_class, [*page, left.pk])
    assert sorted(int(pk) for pk in stored) == sorted(page)  # the lease on `left` released
    assert all(not is_lease(value) for value in stored.values())


@every_backend
def test_a_page_gone_since_is_a_404_and_leaves_no_lease(api):
    polls = make_polls(questions=101, choices=0, users=0)
    last = polls.questions[-1]
    cold_get(api, f"{FAST}?page=2")  # seen: the one question of page 2
    Question._base_manager.filter(pk=last.pk).delete()
    empty_cache()
    assert api.get(f"{FAST}?page=2").status_code == 404
    assert api.get(f"{PLAIN}?page=2").status_code == 404
    assert held(FastQuestionViewSet, [last.pk]) == {}


@every_backend
def test_rows_a_filter_backend_reshapes_take_the_usual_path(api):
    make_polls(questions=6, choices=1, users=1)
    url = "/t/fast/deferring-questions/?limit=5"
    cold_get(api, url)
    answer, queries = cold_get(api, url)
    assert rows(answer) == rows(api.get(url.replace("fast", "plain")).json())
    # Keys, then rows by key from get_queryset(): no query per deferred column.
    assert len(queries) == 4, queries


def test_an_unreachable_cache_serves_the_page_from_its_rows(api, settings):
    from drf_instcache.testing.ports import free_port

    make_polls(questions=12, choices=1, users=1)
    plain = api.get(PLAIN).json()
    working = settings.DRF_INSTCACHE_BACKEND
    settings.DRF_INSTCACHE_BACKEND = (
        f"redis://127.0.0.1:{free_port()}/0?socket_connect_timeout=0.2&socket_timeout=0.2"
    )
    try:
        sent = []
        for _ in range(2):  # seen while failing, then read from its rows
            with CaptureQueriesContext(connection) as queries:
                assert api.get(FAST).json() == plain
            sent.append(len(queries))
    finally:
        settings.DRF_INSTCACHE_BACKEND = working  # so the namespace can be cleared
    assert sent == [4, 3]


@every_backend
def test_a_page_gone_mostly_warm_takes_the_usual_path_over_the_reads_leases(api):
    polls = make_polls(questions=30, choices=1, users=1)
    pks = [q.pk for q in polls.questions]
    cold_get(api, FAST)
    cold_get(api, FAST)  # read from its rows: the scope is still cold
    plan = rendered.plan_for_view(FastQuestionViewSet)
    instcache_settings.get_backend().delete_many([plan.key(str(pk)) for pk in pks[:10]])
    with counters.tracking() as counts, CaptureQueriesContext(connection) as queries:
        response = api.get(FAST)
    sent = len(queries)  # read now: the next request empties the query log
    assert response.json() == api.get(PLAIN).json()
    assert counts["waited"] == 0  # not on its own leases
    assert (counts["hits"], counts["misses"]) == (20, 10)
    assert sent == 4  # count, keys; the ten rows by key, their choices
    stored = held(FastQuestionViewSet, pks)
    assert len(stored) == 30 and all(not is_lease(value) for value in stored.values())
