"""The compression layer: marked zstd values, readable whatever the reader's setting.

Real backends (locmem, and Redis for the lease script) under :class:`CompressedBackend`;
what is stored is read back through the bare adapter, so the tests see the server's bytes.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import uuid
from collections.abc import Iterator

import pytest
from django.test import override_settings

from drf_instcache import counters as stats
from drf_instcache import settings as instcache_settings
from drf_instcache.backends.locmem import LocMemBackend
from drf_instcache.backends.redis import RedisBackend
from drf_instcache.breaker import CircuitBreakerBackend
from drf_instcache.checks import run_checks
from drf_instcache.codecs import get_codec
from drf_instcache.compression import (
    ZSTD_HEAD,
    CompressedBackend,
    CompressionPolicy,
    compress,
    decompress,
    parse_policy,
)
from drf_instcache.exceptions import CorruptValue, ImproperlyConfigured
from drf_instcache.leases import UNCACHEABLE, new_lease
from example.polls.cache import PollCache
from example.polls.models import Choice, Question
from tests.backends.config_redis import redis_server  # noqa: F401  (fixture)
from tests.core.conftest import PUB_DATE

LARGE = json.dumps([{"id": n, "text": f"choice number {n}", "votes": n % 7} for n in range(200)])
LARGE_BYTES = LARGE.encode()
ON = CompressionPolicy(min_bytes=1024)


@pytest.fixture
def adapter() -> Iterator[LocMemBackend]:
    backend = LocMemBackend(f"compression-{uuid.uuid4().hex}")
    yield backend
    backend.clear()


def test_large_values_are_stored_marked_and_smaller_and_read_back_exactly(adapter):
    compressed = CompressedBackend(adapter, ON)
    compressed.set_many({"large": LARGE_BYTES, "small": b"J1{}"})
    stored = adapter.get_many(["large", "small"])
    assert stored["large"].startswith(ZSTD_HEAD)
    assert len(stored["large"]) < len(LARGE_BYTES) / 4
    assert stored["small"] == b"J1{}"  # under MIN_BYTES: as it is
    assert compressed.get_many(["large", "small"]) == {"large": LARGE_BYTES, "small": b"J1{}"}


def test_markers_and_incompressible_values_are_stored_as_they_are(adapter):
    lease = new_lease()
    noise = os.urandom(4096)  # zstd cannot make it smaller
    marked = ZSTD_HEAD + b"x" * 2000  # as if read back unreadable
    CompressedBackend(adapter, CompressionPolicy(min_bytes=1)).set_many(
        {"lease": lease, "marked": marked, "noise": noise, "uncacheable": UNCACHEABLE}
    )
    stored = adapter.get_many(["lease", "marked", "noise", "uncacheable"])
    assert stored["uncacheable"] == UNCACHEABLE
    assert stored["lease"] == lease
    assert stored["marked"] == marked
    assert stored["noise"] == noise


def test_other_values_led_by_nul_are_compressed_and_read_back(adapter):
    value = bytes(range(256)) * 64
    compressed = CompressedBackend(adapter, ON)
    compressed.set_many({"k": value})
    assert adapter.get_many(["k"])["k"].startswith(ZSTD_HEAD)
    assert compressed.get_many(["k"]) == {"k": value}


@pytest.mark.parametrize("reader_policy", [None, CompressionPolicy(min_bytes=100_000), ON])
def test_readers_with_any_setting_read_compressed_and_plain_values(adapter, reader_policy):
    CompressedBackend(adapter, ON).set_many({"compressed": LARGE_BYTES})
    adapter.set_many({"written-before": LARGE_BYTES})  # before compression was turned on
    reader = CompressedBackend(adapter, reader_policy)
    assert reader.get_many(["compressed", "written-before"]) == {
        "compressed": LARGE_BYTES,
        "written-before": LARGE_BYTES,
    }


def test_a_bad_frame_is_corrupt_and_returned_as_stored(adapter, caplog):
    bad = ZSTD_HEAD + b"definitely not a zstd frame"
    with pytest.raises(CorruptValue):
        decompress(bad)
    adapter.set_many({"bad": bad})
    assert CompressedBackend(adapter, ON).get_many(["bad"]) == {"bad": bad}
    assert "unreadable" in caplog.text


@pytest.mark.django_db
def test_corrupt_compressed_entry_is_a_miss_and_is_rewritten(adapter):
    question = Question.objects.create(question_text="Q" * 150, pub_date=PUB_DATE)
    Choice.objects.create(question=question, choice_text="C" * 150)
    cache = PollCache(backend=CompressedBackend(adapter, CompressionPolicy(min_bytes=64)))
    key = cache.key_for("default", "Question", question.pk)
    adapter.set_many({key: ZSTD_HEAD + b"\x28\xb5\x2f\xfd truncated"})
    before = stats.snapshot()["corrupt"]

    result = cache.get_instances([("Question", question.pk, None)])

    assert result[("Question", question.pk)][0]["question_text"] == "Q" * 150
    assert stats.snapshot()["corrupt"] == before + 1
    rewritten = adapter.get_many([key])[key]
    assert rewritten.startswith(ZSTD_HEAD)
    assert get_codec("json").decode(decompress(rewritten))["id"] == question.pk
    # And a reader with compression off reads the rewritten entry as a hit.
    assert PollCache(backend=CompressedBackend(adapter, None)).get_instances(
        [("Question", question.pk, None)]
    )[("Question", question.pk)][0]["question_text"] == ("Q" * 150)


def test_compare_and_set_over_a_lease_stores_a_large_value_compressed(adapter):
    compressed = CompressedBackend(adapter, ON)
    lease = new_lease()
    assert compressed.add_many({"k": lease}) == ["k"]
    assert compressed.compare_and_set_many({"k": (lease, LARGE_BYTES)}) == ["k"]
    assert adapter.get_many(["k"])["k"].startswith(ZSTD_HEAD)
    # A value this policy wrote is matched as read (zstd is deterministic per level).
    assert compressed.compare_and_set_many({"k": (LARGE_BYTES, b"J1[]")}) == ["k"]
    assert compressed.get_many(["k"]) == {"k": b"J1[]"}


def test_compare_and_set_on_redis_through_the_layer(redis_server):  # noqa: F811
    redis_backend = RedisBackend(redis_server.url, key_prefix=f"z{uuid.uuid4().hex[:8]}")
    compressed = CompressedBackend(redis_backend, ON)
    try:
        lease = new_lease()
        assert compressed.add_many({"k": lease}) == ["k"]
        assert compressed.compare_and_set_many({"k": (lease, LARGE_BYTES)}) == ["k"]
        assert redis_backend.get_many(["k"])["k"].startswith(ZSTD_HEAD)
        assert compressed.get_many(["k"]) == {"k": LARGE_BYTES}
    finally:
        redis_backend.clear()
        redis_backend.close()


def test_compress_leaves_small_values_alone():
    assert compress(b"x" * 1023, ON) == b"x" * 1023
    assert compress(b"x" * 1024, ON).startswith(ZSTD_HEAD)
    assert compress(b"x" * 5000, None) == b"x" * 5000


@pytest.mark.parametrize(
    "value",
    [
        {"MIN_BYTES": 0},
        {"MIN_BYTES": "1k"},
        {"LEVEL": 40},
        {"ALGORITHM": "lz4"},
        {"THRESHOLD": 10},
        "zstd",
    ],
)
def test_bad_settings_are_refused(value):
    with pytest.raises(ImproperlyConfigured, match="DRF_INSTCACHE_COMPRESSION"):
        parse_policy(value)


def test_the_setting_builds_the_layer_inside_the_breaker():
    with override_settings(
        DRF_INSTCACHE_BACKEND="locmem://compressed",
        DRF_INSTCACHE_COMPRESSION={"MIN_BYTES": 512, "LEVEL": 1},
    ):
        backend = instcache_settings.get_backend().backend  # inside the observer
        assert isinstance(backend, CircuitBreakerBackend)
        assert isinstance(backend.backend, CompressedBackend)
        assert backend.backend.policy == CompressionPolicy(min_bytes=512, level=1)
        assert isinstance(backend.backend.backend, LocMemBackend)
    with override_settings(DRF_INSTCACHE_BACKEND="locmem://plain"):
        assert instcache_settings.get_backend().backend.policy is None  # reads only


def test_missing_zstandard_is_a_check_error_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "zstandard", None)
    with override_settings(DRF_INSTCACHE_COMPRESSION={"MIN_BYTES": 1024}):
        errors = [message for message in run_checks() if message.id == "drf_instcache.E007"]
        assert len(errors) == 1
        assert "zstandard" in errors[0].msg
        assert "drf-instcache[zstd]" in errors[0].hint
        with pytest.raises(ImproperlyConfigured, match=r"drf-instcache\[zstd\]"):
            instcache_settings.get_backend()


def test_without_zstandard_and_compression_off_everything_works(monkeypatch, adapter):
    monkeypatch.setitem(sys.modules, "zstandard", None)
    monkeypatch.setattr("drf_instcache.backends.compression._local", threading.local())
    assert [m for m in run_checks() if m.id == "drf_instcache.E007"] == []
    backend = instcache_settings.build_configured_backend()
    backend.set_many({"k": LARGE_BYTES})
    assert backend.get_many(["k"]) == {"k": LARGE_BYTES}
    # A compressed value cannot be read without the library: corrupt, never a crash.
    adapter.set_many({"z": ZSTD_HEAD + b"frame"})
    assert CompressedBackend(adapter, None).get_many(["z"]) == {"z": ZSTD_HEAD + b"frame"}
