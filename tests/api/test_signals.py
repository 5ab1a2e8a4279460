"""The signal helpers: connecting, disconnecting, and the cascade's termination."""

from __future__ import annotations

import logging
import sys
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete, pre_save

from drf_instcache import settings as instcache_settings
from drf_instcache import signals
from drf_instcache.cache import BaseCache
from drf_instcache.exceptions import ImproperlyConfigured
from example.polls.cache import PollCache
from example.polls.models import Choice, Question
from tests.api.conftest import Polls, cached_bytes

ALL_SIGNALS = (pre_save, post_save, pre_delete, post_delete, m2m_changed)


class NodeCache(BaseCache):
    """A synthetic chain without a database: node n names node n+1, the last names 0.

    Longer than the recursion limit, and a cycle: a recursive or unguarded cascade
    would fail or never end.
    """

    length = sys.getrecursionlimit() * 2
    generation = 0
    """Bumped by a test to change every node's representation."""

    def node_default_serializer(self, obj: dict | None) -> dict | None:
        return {"id": obj["id"], "generation": self.generation} if obj else None

    def node_default_loader(self, pk: Any) -> dict | None:
        return {"id": int(pk)} if 0 <= int(pk) < self.length else None

    def node_default_invalidator(self, obj: dict) -> list[tuple[str, int, bool]]:
        return [("Node", (obj["id"] + 1) % self.length, False)]


def receiver_counts() -> list[int]:
    return [len(signal.receivers) for signal in ALL_SIGNALS]


def test_a_long_cyclic_cascade_is_followed_iteratively_and_ends():
    cache = NodeCache()
    keys = [cache.key_for("default", "node", pk) for pk in range(NodeCache.length)]
    # Cold: the written node is refreshed; the uncached node it names is left alone.
    assert signals.update_cache_for_instance(cache, "node", 0) == 1
    assert len(instcache_settings.get_backend().get_many(keys)) == 1
    cache.get_instances([("node", pk, None) for pk in range(NodeCache.length)])
    # Every cached node changes: the cascade follows the whole cycle, once each.
    cache.generation = 1
    assert signals.update_cache_for_instance(cache, "node", 0) == NodeCache.length
    stored = instcache_settings.get_backend().get_many(keys)
    assert all(
        cache.decode_entry("node", "default", raw)["generation"] == 1 for raw in stored.values()
    )
    # Nothing changed since: the cascade stops at the first, unchanged, entry.
    assert signals.update_cache_for_instance(cache, "node", 0) == 1


def test_an_invalidator_naming_an_unknown_model_is_logged_and_skipped(caplog):
    class Confused(NodeCache):
        length = 3

        def node_default_invalidator(self, obj: dict) -> list[tuple[str, int, bool]]:
            return [("Ghost", 1, False), *super().node_default_invalidator(obj)]

    cache = Confused()
    cache.get_instances([("node", pk, None) for pk in range(3)])
    cache.generation = 1
    with caplog.at_level(logging.WARNING, logger="drf_instcache.invalidation"):
        refreshed = signals.update_cache_for_instance(cache, "node", 0)
    assert refreshed == 3  # the three nodes; "Ghost" is skipped with a warning
    assert "ghost" in caplog.text.lower()


def test_connecting_twice_changes_nothing():
    before = receiver_counts()
    assert set(signals.connect(PollCache)) == {Question, Choice, User}
    assert receiver_counts() == before


def test_disconnect_stops_refreshes_until_connected_again(api, polls: Polls):
    question = polls.questions[0]
    api.get(f"/api/questions/{question.pk}/")
    before = cached_bytes("question", question.pk)
    signals.disconnect(PollCache)
    try:
        Question._base_manager.filter(pk=question.pk).update(question_text="unseen")  # no signal
        stale = Question.objects.get(pk=question.pk)
        stale.question_text = "saved while disconnected"
        stale.save()
        assert cached_bytes("question", question.pk) == before
    finally:
        signals.connect(PollCache)
    stale.question_text = "saved while connected"
    stale.save()
    body = api.get(f"/api/questions/{question.pk}/").json()
    assert body["question_text"] == "saved while connected"


def test_connect_for_chosen_models_and_one_version(api, polls: Polls):
    class QuestionsOnly(PollCache):
        pass

    before = receiver_counts()
    chosen = signals.connect(QuestionsOnly, models=["polls.Question"], version="default")
    try:
        assert chosen == [Question]
        # four model signals for Question; no m2m relation touches Question
        assert receiver_counts() == [count + 1 for count in before[:4]] + before[4:]
    finally:
        signals.disconnect(QuestionsOnly, models=["polls.Question"], version="default")
    assert receiver_counts() == before


def test_a_cache_naming_no_installed_model_cannot_be_connected():
    with pytest.raises(ImproperlyConfigured, match=r"'node'.*models="):
        signals.connect(NodeCache)
    with pytest.raises(ImproperlyConfigured, match=r"polls\.Nothing"):
        signals.connect(PollCache, models=["polls.Nothing"])


def test_cache_class_paths_round_trip():
    path = signals.cache_class_path(PollCache)
    assert path == "example.polls.cache.PollCache"
    assert signals.import_cache_class(path) is PollCache
    with pytest.raises(ImproperlyConfigured, match="not a BaseCache"):
        signals.import_cache_class("example.polls.models.Question")
    with pytest.raises(ImproperlyConfigured, match="cannot import"):
        signals.import_cache_class("example.polls.cache.Missing")
