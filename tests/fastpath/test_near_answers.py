"""Warm list bodies kept whole in the near cache (:mod:`drf_instcache.fastpath.answers`).

On a real redis-server with the near cache's tracking up, and PostgreSQL where another
process writes: a kept body is what plain DRF answers, costs no query and no cache
lookup, and is never served once anything it was computed from changed, whether the
change comes from this process, from another process (announced by Redis), or arrives
while the body is being computed. Waiting is bounded; nothing asserts a duration.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.db import connection
from django.test.utils import CaptureQueriesContext

from drf_instcache import settings as instcache_settings
from drf_instcache.backends.near import NearCacheBackend, near_layer
from drf_instcache.backends.near_store import PAGE_SHARE, NearStore
from drf_instcache.testing.near import wait_for_announcements
from example.polls.models import Question
from tests.api.conftest import NEAR, make_polls

pytestmark = pytest.mark.parametrize("instcache_backend", [NEAR], indirect=True)

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 10.0
LIST = "/t/fast/limit-questions/?limit=10&offset=10"
PLAIN = "/t/plain/limit-questions/?limit=10&offset=10"


@pytest.fixture(autouse=True)
def cached_list_queries(settings) -> None:
    settings.DRF_INSTCACHE_CACHE_LIST_QUERIES = True


def near() -> NearCacheBackend:
    layer = near_layer(instcache_settings.get_backend())
    assert layer is not None
    return layer


def wait_until(predicate, what: str) -> None:
    end = time.monotonic() + DEADLINE
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"not {what} after {DEADLINE}s")
        time.sleep(0.005)


def get(api, url: str = LIST, **extra):
    """The parsed answer, whether it was a kept body, and the queries it made."""
    store = near().store
    served = store.answers_served
    with CaptureQueriesContext(connection) as captured:
        response = api.get(url, **extra)
    assert response.status_code == 200, response.content[:300]
    return response.json(), store.answers_served > served, len(captured.captured_queries)


def plain(api, url: str = PLAIN, **extra):
    expected = api.get(url, **extra).json()
    for link in ("next", "previous"):
        if expected.get(link):
            expected[link] = expected[link].replace("/plain/", "/fast/")
    return expected


def served_whole(api, url: str = LIST, **extra):
    """Ask until the answer is a kept body (the first warm requests compute and keep it,
    once the announcements of this process's own fills have all arrived)."""
    get(api, url, **extra)
    wait_for_announcements(instcache_settings.get_backend())  # own fills' included
    end = time.monotonic() + DEADLINE
    while True:
        answer, whole, queries = get(api, url, **extra)
        if whole:
            return answer, queries
        if time.monotonic() > end:
            raise AssertionError(f"{url} never served whole")


def test_a_warm_list_is_served_whole_as_plain_drf_answers_it(api):
    make_polls(questions=30)
    first, whole, _ = get(api)
    assert not whole
    answer, queries = served_whole(api)
    assert answer == first == plain(api)
    assert queries == 0
    store = near().store
    hits, misses = store.hits, store.misses
    again, whole, queries = get(api)
    assert whole and again == answer and queries == 0
    assert (store.hits, store.misses) == (hits, misses), "no near-cache lookup either"


def test_a_write_in_this_process_is_seen_by_the_next_request(api):
    polls = make_polls(questions=30)
    served_whole(api)
    question = polls.questions[12]
    question.question_text = "Changed here?"
    question.save()
    answer, whole, _ = get(api)
    assert not whole
    assert answer == plain(api)
    Question.objects.create(question_text="New?", pub_date=polls.questions[0].pub_date)
    answer, whole, _ = get(api)
    assert not whole
    assert answer == plain(api)
    assert answer["count"] == 31
    answer, _ = served_whole(api)
    assert answer == plain(api)


@pytest.fixture
def needs_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("another process shares the test database only on PostgreSQL")


def test_a_write_by_another_process_is_never_served_once_announced(
    api, needs_postgresql, redis_server, cache_namespace
):
    polls = make_polls(questions=30)
    before, _ = served_whole(api)
    on_page = {row["id"] for row in before["results"]}
    question = next(q for q in polls.questions if q.pk in on_page)
    store = near().store
    invalidations = store.invalidations
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.api.outbox_writer",
            f"{redis_server.url}?prefix={cache_namespace}",
            str(question.pk),
            "Changed elsewhere?",
            "lists",
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "PGDATABASE": connection.settings_dict["NAME"],
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    wait_until(lambda: store.invalidations > invalidations, "the write announced")
    for _ in range(20):
        answer, _, _ = get(api)
        texts = {row["id"]: row["question_text"] for row in answer["results"]}
        assert texts[question.pk] == "Changed elsewhere?"
    assert answer == plain(api)


def test_an_invalidation_arriving_while_the_body_is_computed_keeps_nothing(api, redis_server):
    make_polls(questions=30)
    first, whole, _ = get(api)
    layer = near()
    store = layer.store
    page = [row["id"] for row in first["results"]]
    client = redis.Redis.from_url(redis_server.url, protocol=2)
    victim = next(
        key.decode()
        for key in client.scan_iter(match=f"*{page[3]}*")
        if b"dig:" not in key and b"diq:" not in key
    )
    store.flush()  # the next request reads every key from Redis, through the hook
    raced: list[str] = []

    def invalidate_while_computing(keys) -> None:
        if raced:
            return
        raced.append(victim)
        seen = store.invalidations
        client.delete(victim)  # another process's write, announced while we compute
        wait_until(lambda: store.invalidations > seen, "the deletion announced")

    layer.after_read = invalidate_while_computing
    try:
        answer, whole, _ = get(api)
    finally:
        layer.after_read = None
        client.close()
    assert raced and not whole
    assert answer == first  # computed from what was read before the deletion
    assert store.stats()["answers"] == 0, "a body read before an invalidation is not kept"
    again, whole, _ = get(api)
    assert not whole and again == plain(api)


def test_requests_that_build_other_links_get_their_own_bodies(api, settings):
    settings.ALLOWED_HOSTS = ["*"]
    make_polls(questions=30)
    here, _ = served_whole(api, HTTP_HOST="here.example")
    there, _ = served_whole(api, HTTP_HOST="there.example")
    assert here["next"].startswith("http://here.example/")
    assert there["next"].startswith("http://there.example/")
    assert here == plain(api, HTTP_HOST="here.example")
    assert there == plain(api, HTTP_HOST="there.example")
    other, _ = served_whole(api, LIST + "&unrelated=1")
    assert "unrelated=1" in other["next"]
    assert other == plain(api, PLAIN + "&unrelated=1")
    numbered, _ = served_whole(api, "/api/fast/questions/?page=1")  # DRF's page numbers
    assert numbered == plain(api, "/api/plain/questions/?page=1")


# -- the store's bound (no server: the in-memory part) -----------------------------------
def _store(max_bytes: int) -> NearStore:
    store = NearStore(max_bytes, max_bytes, lambda keys: {f"p:{key}": key for key in keys})
    store.set_live(True)
    return store


def test_kept_bodies_stay_within_their_share_of_the_bound():
    store = _store(64 * 1024)
    for number in range(200):
        ticket = store.mark()
        store.fill({f"e{number}": b"x" * 100}, ticket)
        store.keep_answer(("page", number), b"y" * 1000, 1000, [f"e{number}"], ticket)
        assert store.size <= store.max_bytes
        assert store._answers_size <= store.max_bytes // PAGE_SHARE
    assert store.answer(("page", 0)) is None, "the oldest were dropped"
    assert store.answer(("page", 199)) == b"y" * 1000


def test_a_kept_body_dies_with_any_key_it_read_and_only_with_those():
    store = _store(2**20)
    ticket = store.mark()
    assert store.keep_answer("a", b"A", 1, ["k1", "k2"], ticket)
    assert store.keep_answer("b", b"B", 1, ["k3"], ticket)
    store.invalidate(["p:unrelated"])
    assert store.answer("a") == b"A" and store.answer("b") == b"B"
    store.invalidate(["p:k2"])
    assert store.answer("a") is None
    assert store.answer("b") == b"B"
    late = store.mark()
    store.invalidate(["p:k9"])
    assert not store.keep_answer("c", b"C", 1, ["k9"], late), "read before its invalidation"
    store.set_live(False)
    store.set_live(True)
    assert store.answer("b") is None, "a lost tracking connection drops every kept body"
