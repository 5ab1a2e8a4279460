"""Promise 6: an instance too large for the backend is served from the database, uncached.

One warning per instance and process, never an exception, on every backend: with a
configured ``max_value_size`` everywhere, and with memcached's own item size limit. The
key then holds a small "too large" marker, so later reads go straight to the database
instead of competing for leases whose fills would be refused; a write that makes the
instance small enough caches it again.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

import pytest

from drf_instcache.leases import UNCACHEABLE
from example.polls.models import Question
from tests.reliability.conftest import InstrumentedPollCache

pytestmark = pytest.mark.django_db

LIMIT = 300
PUB_DATE = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)


def too_large_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno == logging.WARNING and "too large" in record.getMessage()
    ]


def read_text(cache: InstrumentedPollCache, pk: Any) -> str:
    return cache.get_instances([("question", pk, None)])[("question", pk)][0]["question_text"]


def test_oversized_instance_is_served_uncached_with_one_warning(make_backend, caplog):
    backend = make_backend(max_value_size=LIMIT)
    cache = InstrumentedPollCache(backend=backend)
    big = Question.objects.create(question_text="Long? " + "x" * 190, pub_date=PUB_DATE)
    small = Question.objects.create(question_text="Short?", pub_date=PUB_DATE)
    big_key = cache.key_for("default", "question", big.pk)
    small_key = cache.key_for("default", "question", small.pk)

    with caplog.at_level(logging.WARNING, logger="drf_instcache"):
        for _ in range(3):
            found = cache.get_instances([("question", big.pk, None), ("question", small.pk, None)])
            assert found[("question", big.pk)][0]["question_text"] == big.question_text
            assert found[("question", small.pk)][0]["question_text"] == "Short?"
        cache.update_instance("question", big.pk)

    assert len(too_large_warnings(caplog)) == 1
    assert big_key in too_large_warnings(caplog)[0]
    assert cache.loads == 3 + 1, "the big one is loaded by every read (and the update)"
    stored = backend.get_many([big_key, small_key])
    assert stored.get(big_key) in (None, UNCACHEABLE), "never a representation"
    assert cache.decode_entry("question", "default", stored[small_key])["question_text"] == (
        "Short?"
    )

    # A write that makes it fit caches it again.
    Question._base_manager.filter(pk=big.pk).update(question_text="Now short")
    cache.update_instance("question", big.pk)
    loads = cache.loads
    assert read_text(cache, big.pk) == "Now short"
    assert cache.loads == loads, "served from the cache"


@pytest.mark.needs_item_limit
def test_instance_over_the_server_item_limit(adapter, backend, caplog):
    class PaddedCache(InstrumentedPollCache):
        """Representations padded past the server's own item size limit."""

        def question_default_serializer(self, obj: Any) -> dict[str, Any] | None:
            native = super().question_default_serializer(obj)
            if native is not None:
                native["padding"] = "p" * (adapter.item_limit + 1)
            return native

    cache = PaddedCache(backend=backend)
    question = Question.objects.create(question_text="Huge", pub_date=PUB_DATE)
    with caplog.at_level(logging.WARNING, logger="drf_instcache"):
        assert read_text(cache, question.pk) == "Huge"
        assert read_text(cache, question.pk) == "Huge"
    assert len(too_large_warnings(caplog)) == 1
    assert cache.loads == 2


@pytest.mark.django_db(transaction=True)
def test_api_serves_an_oversized_instance_with_one_warning(redis_server, settings, caplog):
    settings.DRF_INSTCACHE_BACKEND = (
        f"{redis_server.url}?prefix=big{uuid.uuid4().hex[:8]}&max_value_size={LIMIT}"
    )
    # Statistics are published to the same backend after every request: they must not
    # fail a request either when they outgrow the limit.
    settings.DRF_INSTCACHE_STATS_FLUSH_INTERVAL = 0
    from rest_framework.test import APIClient

    question = Question.objects.create(question_text="L" * 200, pub_date=PUB_DATE)
    api = APIClient()
    plain = api.get(f"/api/plain/questions/{question.pk}/").json()
    with caplog.at_level(logging.WARNING, logger="drf_instcache"):
        for _ in range(3):
            response = api.get(f"/api/questions/{question.pk}/")
            assert response.status_code == 200
            assert response.json() == plain
            listing = api.get("/api/questions/")
            assert listing.status_code == 200
            assert plain in listing.json()["results"]
    assert len(too_large_warnings(caplog)) == 1
