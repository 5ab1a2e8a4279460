"""What ``manage.py instcache`` acts on, found without configuration."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError

from drf_instcache import discovery
from drf_instcache.cache import BaseCache
from example.polls.cache import PollCache
from tests.ops.conftest import cached_pks, instcache


class GroupCache(BaseCache):
    """A cache used outside any view: found only through DRF_INSTCACHE_CACHE_CLASSES."""

    def group_default_serializer(self, obj: Group | None) -> dict[str, Any] | None:
        return {"id": obj.pk, "name": obj.name} if obj else None

    def group_default_loader(self, pk: Any) -> Group | None:
        return Group.objects.filter(pk=pk).first()

    def group_default_invalidator(self, obj: Group) -> list:
        return []


def test_discovers_the_example_api_from_the_url_conf_and_the_signals(db):
    targets = discovery.discover()
    assert [(t.label, t.cache_class) for t in targets] == [
        ("auth.user", PollCache),
        ("polls.choice", PollCache),
        ("polls.question", PollCache),
    ]
    question = targets[2]
    assert question.versions == ("default",)
    assert question.sources[0] == "url api/^questions/$"
    assert "signals" in question.sources


def test_the_setting_adds_cache_classes_used_outside_views(db, backend, settings):
    settings.DRF_INSTCACHE_CACHE_CLASSES = ["tests.ops.test_discovery.GroupCache"]
    group = Group.objects.create(name="editors")

    instcache("warm", "group")

    assert "auth.group" in discovery.known_names(discovery.discover())
    cache = GroupCache()
    key = cache.key_for("default", "group", group.pk)
    assert cache.decode_entry("group", "default", backend.get_many([key])[key]) == {
        "id": group.pk,
        "name": "editors",
    }
    assert cached_pks(backend, "question", [1, 2, 3]) == set()  # only what was named


def test_unknown_model_names_are_an_error_listing_the_known_ones(db, backend):
    with pytest.raises(CommandError) as raised:
        instcache("warm", "question", "answer", "vote")
    assert str(raised.value) == (
        "unknown models 'answer', 'vote'; known models: auth.user, polls.choice, polls.question"
    )


def test_a_setting_naming_a_missing_class_fails_the_system_check(settings):
    settings.DRF_INSTCACHE_CACHE_CLASSES = ["tests.ops.test_discovery.NoSuchCache"]
    (error,) = discovery.check_settings()
    assert error.id == "drf_instcache.E012"
    assert "NoSuchCache" in error.msg


def test_a_setting_that_is_not_a_list_fails_the_system_check(settings):
    settings.DRF_INSTCACHE_CACHE_CLASSES = "tests.ops.test_discovery.GroupCache"
    (error,) = discovery.check_settings()
    assert "must be a list of dotted paths" in error.msg
