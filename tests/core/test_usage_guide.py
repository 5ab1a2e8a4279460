"""The usage guide's cache class and signal hooks, with only the import path changed."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth.models import User
from django.db.models.signals import post_delete, post_save

from drf_instcache.backends.locmem import LocMemBackend
from drf_instcache.cache import BaseCache

pytestmark = pytest.mark.django_db

BACKEND = LocMemBackend(f"usage-guide-{uuid.uuid4().hex}")


# --- from the guide (docs/usage.rst), import path changed, backend made explicit -------
class MyCache(BaseCache):
    """Cache for my application."""

    def __init__(self) -> None:
        super().__init__(backend=BACKEND)

    def user_default_serializer(self, obj):
        """Convert a User to a cached instance representation."""
        if not obj:
            return None
        self.user_default_add_related_pks(obj)
        return dict(
            (
                ("id", obj.id),
                ("username", obj.username),
                self.field_to_json("DateTime", "date_joined", obj.date_joined),
            )
        )

    def user_default_loader(self, pk):
        """Load a User from the database."""
        try:
            obj = User.objects.get(pk=pk)
        except User.DoesNotExist:
            return None
        else:
            self.user_default_add_related_pks(obj)
            return obj

    def user_default_add_related_pks(self, obj):
        """Add related primary keys to a User instance."""
        if not hasattr(obj, "_votes_pks"):
            obj._votes_pks = list(obj.votes.values_list("pk", flat=True))

    def user_default_invalidator(self, obj):
        """Invalidate cached items when the User changes."""
        return []


def update_cache_for_instance(model_name, instance_pk, instance):
    cache = MyCache()
    version = cache.default_version
    to_update = cache.update_instance(model_name, instance_pk, instance, version)
    for related_name, related_pk, related_version in to_update:
        update_cache_for_instance(related_name, related_pk, version=related_version)


def post_delete_user_update_cache(sender, instance, **kwargs):
    update_cache_for_instance("User", instance.pk, instance)


def post_save_user_update_cache(sender, instance, created, raw, **kwargs):
    if raw:
        return
    update_cache_for_instance("User", instance.pk, instance)


# --- end of the guide's code ------------------------------------------------------------


@pytest.fixture
def guide_hooks():
    post_delete.connect(post_delete_user_update_cache, sender=User, dispatch_uid="guide-del")
    post_save.connect(post_save_user_update_cache, sender=User, dispatch_uid="guide-save")
    yield
    post_delete.disconnect(sender=User, dispatch_uid="guide-del")
    post_save.disconnect(sender=User, dispatch_uid="guide-save")
    BACKEND.clear()


def cached_username(pk):
    key = MyCache().key_for("default", "User", pk)
    raw = BACKEND.get_many([key]).get(key)
    return None if raw is None else MyCache().codec.decode(raw)["username"]


def test_the_guide_cache_serves_users(guide_hooks, django_assert_num_queries):
    user = User.objects.create_user("dora")  # the save hook caches it
    assert cached_username(user.pk) == "dora"
    with django_assert_num_queries(0):
        result = MyCache().get_instances([("User", user.pk, None)])
    native = result[("User", user.pk)][0]
    assert native["username"] == "dora"
    assert native["date_joined"] == user.date_joined


def test_the_guide_hooks_follow_saves_and_deletes(guide_hooks):
    user = User.objects.create_user("erin")
    user.username = "erin2"
    user.save()
    assert cached_username(user.pk) == "erin2"

    pk = user.pk
    user.delete()
    assert cached_username(pk) is None  # the deleted user was not written back
