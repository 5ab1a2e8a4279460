"""``manage.py instcache drain`` and ``stats`` show and apply the outbox backlog."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from drf_instcache import settings as instcache_settings
from drf_instcache.invalidation.outbox import OUTBOX
from example.polls.cache import PollCache
from tests.api.conftest import make_polls


@pytest.fixture
def needs_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the outbox uses a connection of its own: not shared with :memory:")


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("instcache", *args, stdout=out)
    return out.getvalue()


def test_drain_applies_what_a_failed_write_left(needs_postgresql, cache):
    polls = make_polls()
    question = polls.questions[0]
    cache.get_instances([("Question", question.pk, None)])
    key = cache.key_for("default", "question", question.pk)
    assert OUTBOX.record_keys([key])  # as a writer whose delete failed would
    assert "outbox backlog: 1" in run("stats")
    assert "applied 1 of 1 outbox row(s), 0 left" in run("drain")
    assert instcache_settings.get_backend().get_many([key]) == {}
    assert "outbox backlog: 0" in run("stats")


def test_drain_refreshes_a_recorded_cascade(needs_postgresql, cache):
    from drf_instcache.invalidation.cascade import Refresh

    polls = make_polls()
    question = polls.questions[0]
    cache.get_instances([("Question", question.pk, None)])
    type(question).objects.filter(pk=question.pk).update(question_text="Drained?")
    assert OUTBOX.record_refreshes(PollCache, [Refresh("question", question.pk)])
    run("drain")
    entry = cache.get_instances([("Question", question.pk, None)])[("Question", question.pk)][0]
    assert entry["question_text"] == "Drained?"


def test_drain_fails_loudly_when_the_rows_stay(needs_postgresql, settings, cache):
    settings.DRF_INSTCACHE_BACKEND = "redis://127.0.0.1:1/0?socket_connect_timeout=0.1"
    assert OUTBOX.record_keys(["instcache:default:question:1"])
    with pytest.raises(CommandError, match="could not be applied"):
        run("drain")
    settings.DRF_INSTCACHE_BACKEND = "locmem://drain"
    run("drain")
