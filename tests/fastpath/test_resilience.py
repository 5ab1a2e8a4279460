"""Nothing wrong is ever served: races, foreign bytes, an old deploy's entries, an outage.

* A reader that rendered a row before a write committed has its fill refused (the
  write's deletion ended the reader's lease), so the old output is not cached.
* Bytes under a rendered key that are not a complete entry of *this* serializer
  definition (garbage, a truncated value, another deploy's stamp) are refilled.
* With the cache server gone, requests are answered from the database, correctly.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from drf_instcache import rendered
from drf_instcache import settings as instcache_settings
from drf_instcache.fastjson import encode_representation
from drf_instcache.testing.ports import free_port
from example.polls.cache import PollCache
from example.polls.views import FastQuestionViewSet
from tests.fastpath.conftest import Polls, every_backend

pytestmark = pytest.mark.usefixtures("list_queries")


def stored(pk) -> bytes | None:
    plan = rendered.plan_for_view(FastQuestionViewSet)
    key = plan.key(str(pk))
    return instcache_settings.get_backend().get_many([key]).get(key)


@every_backend
def test_a_fill_prepared_before_a_write_is_refused(api, polls: Polls):
    question = polls.questions[0]
    plan = rendered.plan_for_view(FastQuestionViewSet)
    rendered.connect(FastQuestionViewSet)

    def render_then_lose_the_race(pks: list[str]) -> dict[str, bytes]:
        old = {pk: encode_representation({"id": int(pk), "question_text": "old"}) for pk in pks}
        question.question_text = "Written while rendering"
        question.save()  # commits: the entry (holding our lease) is deleted
        return old

    found = rendered.fetch(PollCache(), plan, [question.pk], "", render_then_lose_the_race)
    assert bytes(found[str(question.pk)]) == b'{"id":%d,"question_text":"old"}' % question.pk
    assert stored(question.pk) is None  # the stale fill did not land
    answer = api.get(f"/api/fast/questions/{question.pk}/").json()
    assert answer == api.get(f"/api/plain/questions/{question.pk}/").json()
    assert answer["question_text"] == "Written while rendering"


@every_backend
def test_foreign_truncated_and_other_deploys_bytes_are_refilled(api, polls: Polls):
    questions = polls.questions
    url = "/api/fast/questions/"
    api.get(url)
    plan = rendered.plan_for_view(FastQuestionViewSet)
    backend = instcache_settings.get_backend()
    good = stored(questions[0].pk)
    backend.set_many(
        {
            plan.key(str(questions[0].pk)): b"not json at all",
            plan.key(str(questions[1].pk)): good[:-5],  # truncated
            # The same key written by another serializer definition (another deploy).
            plan.key(str(questions[2].pk)): b'R0123456789ab:{"id":0,"question_text":"old"}',
        }
    )
    assert api.get(url).json() == api.get("/api/plain/questions/").json()
    for question in questions:
        assert stored(question.pk).startswith(plan.stamp)
        assert stored(question.pk).endswith(b"}")


@pytest.fixture
def unreachable_cache(settings) -> Iterator[None]:
    """A Redis URL nobody answers on, for the duration of the test."""
    working = settings.DRF_INSTCACHE_BACKEND
    settings.DRF_INSTCACHE_BACKEND = (
        f"redis://127.0.0.1:{free_port()}/0?socket_connect_timeout=0.2&socket_timeout=0.2"
    )
    yield
    settings.DRF_INSTCACHE_BACKEND = working  # so the namespace can be cleared


def test_an_unreachable_cache_serves_from_the_database(
    api, polls: Polls, list_queries: bool, unreachable_cache: None, caplog
):
    with caplog.at_level(logging.WARNING, logger="drf_instcache"):
        for resource in ("questions", "polls"):
            plain = api.get(f"/api/plain/{resource}/").json()
            assert api.get(f"/api/fast/{resource}/").json() == plain
            pk = plain["results"][0]["id"]
            assert (
                api.get(f"/api/fast/{resource}/{pk}/").json()
                == api.get(f"/api/plain/{resource}/{pk}/").json()
            )
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings  # the outage, once
    assert "is unavailable" in warnings[0] and "serving from the database" in warnings[0]
    # Writes while the cache is down do not fail either.
    question = polls.questions[0]
    question.question_text = "Written during the outage"
    question.save()
    assert (
        api.get(f"/api/fast/questions/{question.pk}/").json()["question_text"]
        == "Written during the outage"
    )


def test_a_disabled_cache_makes_fast_views_plain(api, polls: Polls, settings):
    settings.USE_DRF_INSTANCE_CACHE = False
    assert api.get("/api/fast/polls/").json() == api.get("/api/plain/polls/").json()
