"""A write costs a bounded number of queries, whatever its fan-out and the cache's state.

The cascade refreshes what an invalidator names one batch per model and level (one
``get_many``, one batch load, one write), so a Choice shown by 500 voters costs the
queries of one shown by 10. While the server is down a write loads and walks nothing:
it defers the refresh, which runs once the server answers again.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from benchmarks.writes_layer import disconnected
from drf_instcache import settings as instcache_settings
from drf_instcache.core import unsettled
from drf_instcache.testing.redis_server import RedisServer
from example.polls.cache import PollCache
from example.polls.models import Choice, Question
from tests.api.conftest import make_polls

CHOICE_PATCH_QUERIES = {"refresh": 13, "drop": 11}
"""Queries of ``PATCH /api/choices/<pk>/`` on a warm cache, whatever the number of voters:
the request's own (object, update, voters for the response) and the write's (the old
row for its invalidator, the batch loads of the Choice and of its Question and voters)."""

VOTE_QUERIES = {"refresh": 13, "drop": 11}
"""Queries of ``choice.voters.add(user)`` on a warm cache, whatever the number of voters."""


@pytest.fixture
def on_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("query counts are asserted on PostgreSQL (DRF_INSTCACHE_TEST_DB)")


def a_choice_with_voters(count: int) -> tuple[Choice, list[User]]:
    """One question, one choice, ``count`` users who voted for it (no signals sent)."""
    tag = uuid.uuid4().hex[:6]
    question = Question.objects.create(question_text="Fan-out?", pub_date="2024-05-01T12:00Z")
    choice = Choice.objects.create(question=question, choice_text="Yes")
    users = User.objects.bulk_create(User(username=f"f{tag}{n:04d}") for n in range(count))
    Choice.voters.through.objects.bulk_create(
        Choice.voters.through(user_id=user.pk, choice_id=choice.pk) for user in users
    )
    return choice, users


def warm(cache: PollCache, choice: Choice, users: list[User]) -> None:
    specs = [("User", user.pk, None) for user in users]
    cache.get_instances(
        [*specs, ("Choice", choice.pk, None), ("Question", choice.question_id, None)]
    )


def assert_nothing_stale(cache: PollCache, model_name: str, pks: list[Any]) -> None:
    """Every cached entry equals a fresh serialization (a dropped entry is fine)."""
    backend = instcache_settings.get_backend()
    keys = {cache.key_for("default", model_name, pk): pk for pk in pks}
    stored = backend.get_many(list(keys))
    loader = cache.model_function(model_name, "default", "loader")
    serializer = cache.model_function(model_name, "default", "serializer")
    for key, raw in stored.items():
        fresh = cache.encode_entry(model_name, "default", serializer(loader(keys[key])))
        assert cache.decode_entry(model_name, "default", raw) == cache.decode_entry(
            model_name, "default", fresh
        ), key


def queries_of(action) -> int:
    with CaptureQueriesContext(connection) as captured:
        action()
    return len(captured)


policies = pytest.mark.parametrize("policy", ["refresh", "drop"])


@policies
def test_a_write_costs_the_same_queries_for_10_and_500_dependents(
    on_postgresql, policy, settings, cache
):
    settings.DRF_INSTCACHE_CASCADE = policy
    api = APIClient()
    counts = {}
    for fan_out in (10, 500):
        choice, users = a_choice_with_voters(fan_out)
        warm(cache, choice, users)
        text = f"Renamed for {fan_out}"
        counts[fan_out] = queries_of(
            lambda choice=choice, text=text: api.patch(
                f"/api/choices/{choice.pk}/", {"choice_text": text}, format="json"
            )
        )
        assert api.get(f"/api/choices/{choice.pk}/").json()["choice_text"] == text
        assert_nothing_stale(cache, "User", [user.pk for user in users])
        assert_nothing_stale(cache, "Choice", [choice.pk])
    assert counts == {10: CHOICE_PATCH_QUERIES[policy], 500: CHOICE_PATCH_QUERIES[policy]}


@policies
def test_an_m2m_add_costs_the_same_queries_for_10_and_500_dependents(
    on_postgresql, policy, settings, cache
):
    settings.DRF_INSTCACHE_CASCADE = policy
    counts = {}
    for fan_out in (10, 500):
        choice, users = a_choice_with_voters(fan_out)
        newcomer = User.objects.create(username=f"n{uuid.uuid4().hex[:8]}")
        warm(cache, choice, [*users, newcomer])
        counts[fan_out] = queries_of(lambda choice=choice, n=newcomer: choice.voters.add(n))
        entry = cache.get_instances([("User", newcomer.pk, None)])[("User", newcomer.pk)][0]
        assert [vote.pk for vote in entry["votes"].all()] == [choice.pk]
        assert_nothing_stale(cache, "User", [user.pk for user in [*users, newcomer]])
        assert_nothing_stale(cache, "Choice", [choice.pk])
    assert counts == {10: VOTE_QUERIES[policy], 500: VOTE_QUERIES[policy]}


DELETE_LIBRARY_QUERIES = {"refresh": 6, "drop": 4}
"""Queries drf-instcache adds to ``question.delete()`` (its Choices and their votes going
with it), whatever the number of Choices, for either cascade policy. Before the commit:
the Choices' batch load (rows, voters) for their invalidators, and the rendered owners
showing them (Users through votes, the Question through choices); the Question's own
invalidator runs on the instance itself. After it: the voters' refresh (rows, votes),
which the drop policy does not send.
Not sent: an owners query twice for two plans sharing it, the Choices showing the
Question (they are deleted with it, and Django collected them), a reload of the
Question the Choices name (it is deleted too)."""


def a_question_with_choices(count: int, voters: list[User]) -> Question:
    question = Question.objects.create(question_text="Doomed?", pub_date="2024-05-01T12:00Z")
    choices = Choice.objects.bulk_create(
        Choice(question=question, choice_text=f"c{n}") for n in range(count)
    )
    Choice.voters.through.objects.bulk_create(
        Choice.voters.through(user_id=user.pk, choice_id=choice.pk)
        for choice in choices
        for user in voters
    )
    return question


def api_answers(api: APIClient, question: Question, choice_pks: list[Any], users: list[User]):
    """What the cached, fast and plain endpoints answer for the rows a delete touches."""
    answers = {}
    for prefix in ("", "fast/", "plain/"):
        urls = [f"/api/{prefix}questions/{question.pk}/"]
        urls += [f"/api/{prefix}choices/{pk}/" for pk in choice_pks[:3]]
        urls += [f"/api/{prefix}users/{user.pk}/" for user in users]
        answers[prefix] = [
            (response.status_code, response.content) for response in map(api.get, urls)
        ]
    return answers


@policies
def test_a_cascading_delete_costs_the_same_queries_for_10_and_500_choices(
    on_postgresql, policy, settings, cache
):
    settings.DRF_INSTCACHE_CASCADE = policy
    api = APIClient()
    tag = uuid.uuid4().hex[:6]
    users = User.objects.bulk_create(User(username=f"d{tag}{n}") for n in range(3))
    added = {}
    for fan_out in (10, 500):
        with disconnected():
            twin = a_question_with_choices(fan_out, users)
            django_own = queries_of(lambda twin=twin: Question.objects.get(pk=twin.pk).delete())
        question = a_question_with_choices(fan_out, users)
        choice_pks = list(question.choices.values_list("pk", flat=True))
        api_answers(api, question, choice_pks, users)  # every entry warm, both levels
        added[fan_out] = (
            queries_of(lambda question=question: Question.objects.get(pk=question.pk).delete())
            - django_own
        )
        answers = api_answers(api, question, choice_pks, users)
        assert answers[""] == answers["fast/"] == answers["plain/"]
        assert {status for status, _ in answers["plain/"][:4]} == {404}
        assert_nothing_stale(cache, "User", [user.pk for user in users])
    expected = DELETE_LIBRARY_QUERIES[policy]
    assert added == {10: expected, 500: expected}


# -- the example's Choice write: warm, with an empty cache, with the server stopped -------
CHOICE_WRITE_BOUND = 13
"""Most queries ``PATCH /api/choices/<pk>/`` costs on the example data, in any cache state."""


@pytest.fixture
def own_redis(settings) -> Iterator[RedisServer]:
    """A redis-server of this test's own, which it may stop."""
    with RedisServer() as server:
        settings.DRF_INSTCACHE_BACKEND = f"{server.url}?prefix=bw{uuid.uuid4().hex[:8]}"
        settings.DRF_INSTCACHE_CIRCUIT_BREAKER = {"FAILURES": 1, "RESET_AFTER": 0.05}
        yield server
        unsettled.forget_all()
        settings.DRF_INSTCACHE_BACKEND = "locmem://bounded-writes"  # what teardown clears


def test_the_example_choice_write_is_bounded_warm_empty_and_with_the_server_stopped(
    on_postgresql, own_redis, cache
):
    polls = make_polls(questions=10, choices=5, users=60, votes=12)  # one connected graph
    api = APIClient()
    choice = polls.choices[7]

    def patch(text: str) -> int:
        def send() -> None:
            response = api.patch(f"/api/choices/{choice.pk}/", {"choice_text": text}, format="json")
            assert response.status_code == 200

        return queries_of(send)

    everything = [
        *(("User", user.pk, None) for user in polls.users),
        *(("Choice", each.pk, None) for each in polls.choices),
        *(("Question", each.pk, None) for each in polls.questions),
    ]
    cache.get_instances(everything)
    warm_count = patch("warm")
    instcache_settings.get_backend().clear()
    empty_count = patch("empty")
    own_redis.stop()
    stopped_count = patch("stopped")
    assert max(warm_count, empty_count, stopped_count) <= CHOICE_WRITE_BOUND, (
        warm_count,
        empty_count,
        stopped_count,
    )
    # The server comes back (empty): the deferred refresh runs before the next read.
    own_redis.start()
    for _ in range(50):
        body = api.get(f"/api/choices/{choice.pk}/").json()
        if body["choice_text"] == "stopped":
            break
    assert body["choice_text"] == "stopped"
