"""The outbox table: invalidations the cache could not take, kept in the database.

One row is either a raw key to delete (``raw_key``) or an instance to refresh with its
cascade (``cache_class``, ``model_name``, ``pk``, ``version``). Rows are written when a
backend call fails after a commit and deleted once the backend has applied them, by
whichever process drains first; applying a row twice is harmless (a delete, a refresh).
"""

from __future__ import annotations

from django.db import models


class PendingInvalidation(models.Model):
    """An invalidation waiting for the cache to answer again."""

    id: models.BigAutoField = models.BigAutoField(primary_key=True)
    created: models.DateTimeField = models.DateTimeField(auto_now_add=True)
    raw_key: models.CharField = models.CharField(max_length=1000, blank=True, default="")
    cache_class: models.CharField = models.CharField(max_length=300, blank=True, default="")
    model_name: models.CharField = models.CharField(max_length=100, blank=True, default="")
    pk_text: models.CharField = models.CharField(max_length=300, blank=True, default="")
    version: models.CharField = models.CharField(max_length=100, blank=True, default="")
    update_only: models.BooleanField = models.BooleanField(default=False)

    class Meta:
        app_label = "drf_instcache"
        db_table = "drf_instcache_pending"
        ordering = ("id",)

    def __str__(self) -> str:
        if self.raw_key:
            return f"delete {self.raw_key}"
        return f"refresh {self.model_name} {self.pk_text} ({self.cache_class})"
