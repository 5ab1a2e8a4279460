"""The fast path with compression on: bodies joined from entries decompressed one by one.

Entries are stored compressed on the real server (read back through the bare adapter),
the joined list and the retrieve answer exactly what plain DRF answers, and a compressed
entry that does not decompress is refilled like any corrupt value, never a 500.
"""

from __future__ import annotations

import pytest

from drf_instcache import counters as stats
from drf_instcache import rendered
from drf_instcache import settings as instcache_settings
from drf_instcache.compression import ZSTD_HEAD, decompress
from example.polls.models import Question
from example.polls.views import FastQuestionViewSet
from tests.fastpath.conftest import Polls, every_backend

pytestmark = pytest.mark.usefixtures("list_queries")


@pytest.fixture(autouse=True)
def compression(settings) -> None:
    settings.DRF_INSTCACHE_COMPRESSION = {"MIN_BYTES": 64}


@pytest.fixture
def polls(polls: Polls) -> Polls:
    """The poll data with texts long and repetitive enough for zstd to shrink each entry."""
    for number, question in enumerate(polls.questions):
        question.question_text = f"{number}: " + "a question worth compressing " * 6
    Question._base_manager.bulk_update(polls.questions, ["question_text"])  # no signals: cold
    return polls


def on_server(keys: list[str]) -> dict[str, bytes]:
    """The bytes the server holds, read under the compression layer."""
    adapter = instcache_settings.get_backend().backend.backend.backend  # observed, breaker, zstd
    return adapter.get_many(keys)


def entry_keys(polls: Polls) -> list[str]:
    plan = rendered.plan_for_view(FastQuestionViewSet)
    return [plan.key(str(question.pk)) for question in polls.questions]


@every_backend
def test_compressed_entries_serve_what_plain_drf_serves(api, polls: Polls):
    plain = api.get("/api/plain/questions/").json()
    assert api.get("/api/fast/questions/").json() == plain  # cold: renders, stores
    stored = on_server(entry_keys(polls))
    assert stored, "the entries were cached"
    assert all(value.startswith(ZSTD_HEAD) for value in stored.values())
    before = stats.snapshot()
    assert api.get("/api/fast/questions/").json() == plain  # warm: joined from the cache
    after = stats.snapshot()
    assert after["hits"] - before["hits"] == len(polls.questions)
    assert after["misses"] == before["misses"]
    pk = polls.questions[0].pk
    assert (
        api.get(f"/api/fast/questions/{pk}/").json()
        == api.get(f"/api/plain/questions/{pk}/").json()
    )


@every_backend
def test_a_compressed_entry_that_does_not_decompress_is_refilled(api, polls: Polls):
    api.get("/api/fast/questions/")
    keys = entry_keys(polls)
    adapter = instcache_settings.get_backend().backend.backend.backend  # observed, breaker, zstd
    adapter.set_many({keys[0]: ZSTD_HEAD + b"\x28\xb5\x2f\xfd broken frame"})
    response = api.get("/api/fast/questions/")
    assert response.status_code == 200
    assert response.json() == api.get("/api/plain/questions/").json()
    plan = rendered.plan_for_view(FastQuestionViewSet)
    assert decompress(on_server([keys[0]])[keys[0]]).startswith(plan.stamp)


def test_a_reader_with_compression_off_serves_compressed_entries(api, polls: Polls, settings):
    api.get("/api/fast/questions/")
    settings.DRF_INSTCACHE_COMPRESSION = None
    keys = entry_keys(polls)
    assert all(value.startswith(ZSTD_HEAD) for value in on_server(keys).values())
    assert api.get("/api/fast/questions/").json() == api.get("/api/plain/questions/").json()
    assert all(value.startswith(ZSTD_HEAD) for value in on_server(keys).values()), (
        "read as hits, not rewritten"
    )
