"""Models of the sample poll app.

Question <- Choice (foreign key, ``question.choices``) and Choice <-> User
(many-to-many, ``choice.voters`` / ``user.votes``): enough relations to exercise every
kind of cache invalidation.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from drf_instcache.bulk import InstcacheManager


class Question(models.Model):
    """A poll question."""

    question_text = models.CharField(max_length=200)
    pub_date = models.DateTimeField("date published")

    # Bulk writes (update, delete, bulk_update, bulk_create) invalidate the cache too.
    objects = InstcacheManager()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.question_text


class Choice(models.Model):
    """One possible answer to a Question, with the Users who picked it."""

    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="choices")
    choice_text = models.CharField(max_length=200)
    voters = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="votes", blank=True)

    objects = InstcacheManager()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.choice_text
