"""A cache class written against drf-cached-instances' API, imported through the shim.

It follows the original project's sample cache: Users (with the primary keys of their
votes), Groups that cache nothing but invalidate every User, a model whose functions are
all None, Questions and Choices (with their question and voters).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group, User

from drf_cached_instances.cache import BaseCache
from example.polls.models import Choice, Question

USER_COUNT_KEY = "drfc_user_count"
"""An application entry kept through ``cache.cache`` and named by the User invalidator."""


class CompatCache(BaseCache):
    """Cache strategy in the original project's style."""

    def user_default_serializer(self, obj: Any) -> dict[str, Any] | None:
        if not obj:
            return None
        self.user_default_add_related_pks(obj)
        return dict(
            (
                ("id", obj.id),
                ("username", obj.username),
                self.field_to_json("DateTime", "date_joined", obj.date_joined),
                self.field_to_json("PKList", "votes", model=Choice, pks=obj._votes_pks),
            )
        )

    def user_default_loader(self, pk: Any) -> Any:
        obj = User.objects.filter(pk=pk).first()
        if obj is not None:
            self.user_default_add_related_pks(obj)
        return obj

    def user_default_add_related_pks(self, obj: Any) -> None:
        if not hasattr(obj, "_votes_pks"):
            obj._votes_pks = list(obj.votes.values_list("pk", flat=True))

    def user_default_invalidator(self, obj: Any) -> list[Any]:
        return [USER_COUNT_KEY]

    group_default_serializer = None

    def group_default_loader(self, pk: Any) -> Any:
        return Group.objects.filter(pk=pk).first()

    def group_default_invalidator(self, obj: Any) -> list[Any]:
        return [("User", pk, False) for pk in obj.user_set.values_list("pk", flat=True)]

    bar_default_serializer = None
    bar_default_loader = None
    bar_default_invalidator = None

    def question_default_serializer(self, obj: Any) -> dict[str, Any] | None:
        if not obj:
            return None
        return dict(
            (
                ("id", obj.id),
                ("question_text", obj.question_text),
                self.field_to_json("DateTime", "pub_date", obj.pub_date),
                self.field_to_json(
                    "PKList",
                    "choices",
                    model=Choice,
                    pks=list(obj.choices.values_list("pk", flat=True)),
                ),
            )
        )

    def question_default_loader(self, pk: Any) -> Any:
        return Question.objects.filter(pk=pk).first()

    def question_default_invalidator(self, obj: Any) -> list[Any]:
        return []

    def choice_default_serializer(self, obj: Any) -> dict[str, Any] | None:
        if not obj:
            return None
        return dict(
            (
                ("id", obj.id),
                ("choice_text", obj.choice_text),
                self.field_to_json("PK", "question", model=Question, pk=obj.question_id),
                self.field_to_json(
                    "PKList", "voters", model=User, pks=obj.voters.values_list("pk", flat=True)
                ),
            )
        )

    def choice_default_loader(self, pk: Any) -> Any:
        return Choice.objects.filter(pk=pk).first()

    def choice_default_invalidator(self, obj: Any) -> list[Any]:
        invalid: list[Any] = [("Question", obj.question_id, True)]
        invalid.extend(("User", pk, False) for pk in obj.voters.values_list("pk", flat=True))
        return invalid
