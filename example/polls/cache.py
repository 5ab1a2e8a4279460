"""Cache strategy of the sample poll app.

Each model has the usage guide's three functions (serializer, loader, invalidator),
an ``add_related_pks`` helper that attaches the to-many primary keys the serializer
needs, and a ``loader_many`` so a cold list costs the same few queries for 10 rows as
for 1000 (one for the rows, one per to-many relation).

What depends on what:

* a User's entry lists the Choices it voted for; a Choice's lists its voters and its
  Question; a Question's lists its Choices;
* so a Choice change invalidates its Question (whose ``choices`` may change) and its
  voters (whose ``votes`` may change), and a User change invalidates the Choices it
  voted for (whose ``voters`` may change).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User

from drf_instcache.cache import BaseCache, load_many_with_related_pks
from example.polls.models import Choice, Question


class PollCache(BaseCache):
    """Cache for the sample poll app: Users, Questions and Choices."""

    # -- User ---------------------------------------------------------------------------
    def user_default_serializer(self, obj: User | None) -> dict[str, Any] | None:
        """Convert a User to a cached instance representation."""
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

    def user_default_loader(self, pk: Any) -> User | None:
        """Load a User from the database."""
        try:
            obj = User.objects.get(pk=pk)
        except User.DoesNotExist:
            return None
        self.user_default_add_related_pks(obj)
        return obj

    def user_default_loader_many(self, pks: list[Any]) -> dict[Any, User]:
        """Load many Users with their votes: two queries, whatever the number."""
        return load_many_with_related_pks(User.objects.all(), pks, ["votes"])

    def user_default_add_related_pks(self, obj: User) -> None:
        """Add related primary keys to a User instance."""
        if not hasattr(obj, "_votes_pks"):
            # A deleted instance (pk None) has no relations left to read.
            obj._votes_pks = (
                []
                if obj.pk is None
                else list(obj.votes.order_by("pk").values_list("pk", flat=True))
            )

    def user_default_invalidator(self, obj: User) -> list[tuple[str, Any, bool]]:
        """A User's votes appear in the Choices it voted for."""
        self.user_default_add_related_pks(obj)
        return [("Choice", pk, False) for pk in obj._votes_pks]

    # -- Question -----------------------------------------------------------------------
    def question_default_serializer(self, obj: Question | None) -> dict[str, Any] | None:
        """Convert a Question to a cached instance representation."""
        if not obj:
            return None
        self.question_default_add_related_pks(obj)
        return dict(
            (
                ("id", obj.id),
                ("question_text", obj.question_text),
                self.field_to_json("DateTime", "pub_date", obj.pub_date),
                self.field_to_json("PKList", "choices", model=Choice, pks=obj._choices_pks),
            )
        )

    def question_default_loader(self, pk: Any) -> Question | None:
        """Load a Question from the database."""
        try:
            obj = Question.objects.get(pk=pk)
        except Question.DoesNotExist:
            return None
        self.question_default_add_related_pks(obj)
        return obj

    def question_default_loader_many(self, pks: list[Any]) -> dict[Any, Question]:
        """Load many Questions with their choices: two queries, whatever the number."""
        return load_many_with_related_pks(Question.objects.all(), pks, ["choices"])

    def question_default_add_related_pks(self, obj: Question) -> None:
        """Add related primary keys to a Question instance."""
        if not hasattr(obj, "_choices_pks"):
            # A deleted instance (pk None) has no relations left to read.
            obj._choices_pks = (
                []
                if obj.pk is None
                else list(obj.choices.order_by("pk").values_list("pk", flat=True))
            )

    def question_default_invalidator(self, obj: Question) -> list[tuple[str, Any, bool]]:
        """Nothing else shows a Question's own fields (Choices hold only its pk)."""
        return []

    # -- Choice -------------------------------------------------------------------------
    def choice_default_serializer(self, obj: Choice | None) -> dict[str, Any] | None:
        """Convert a Choice to a cached instance representation."""
        if not obj:
            return None
        self.choice_default_add_related_pks(obj)
        return dict(
            (
                ("id", obj.id),
                self.field_to_json("PK", "question", model=Question, pk=obj.question_id),
                ("choice_text", obj.choice_text),
                self.field_to_json("PKList", "voters", model=User, pks=obj._voters_pks),
            )
        )

    def choice_default_loader(self, pk: Any) -> Choice | None:
        """Load a Choice from the database."""
        try:
            obj = Choice.objects.get(pk=pk)
        except Choice.DoesNotExist:
            return None
        self.choice_default_add_related_pks(obj)
        return obj

    def choice_default_loader_many(self, pks: list[Any]) -> dict[Any, Choice]:
        """Load many Choices with their voters: two queries, whatever the number."""
        return load_many_with_related_pks(Choice.objects.all(), pks, ["voters"])

    def choice_default_add_related_pks(self, obj: Choice) -> None:
        """Add related primary keys to a Choice instance.

        A signal hook can call this in ``pre_delete`` so the invalidator of a deleted
        Choice still knows its voters (their rows are gone by ``post_delete``).
        """
        if not hasattr(obj, "_voters_pks"):
            # A deleted instance (pk None) has no relations left to read.
            obj._voters_pks = (
                []
                if obj.pk is None
                else list(obj.voters.order_by("pk").values_list("pk", flat=True))
            )

    def choice_default_invalidator(self, obj: Choice) -> list[tuple[str, Any, bool]]:
        """A Choice appears in its Question's choices and in its voters' votes."""
        self.choice_default_add_related_pks(obj)
        invalid: list[tuple[str, Any, bool]] = [("Question", obj.question_id, True)]
        invalid.extend(("User", pk, False) for pk in obj._voters_pks)
        return invalid
