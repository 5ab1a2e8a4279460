"""DRF serializers of the sample poll API.

They are ordinary ``ModelSerializer`` classes: the same serializer renders a real model
instance (plain DRF, writes) and a :class:`~drf_instcache.models.CachedModel` (cached
reads), which is the point of caching instances rather than responses.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework import serializers

from example.polls.models import Choice, Question

User = get_user_model()


class UserSerializer(serializers.ModelSerializer):
    """A user and the choices they voted for."""

    # ``date_joined`` is a datetime: DRF 3 refuses to render a datetime with a DateField
    # (it would silently drop the time zone), so ``created`` keeps the full timestamp.
    created = serializers.DateTimeField(source="date_joined", read_only=True)
    votes = serializers.PrimaryKeyRelatedField(
        many=True, queryset=Choice.objects.all(), required=False
    )

    class Meta:
        model = User
        fields = ("id", "username", "created", "votes")


class QuestionSerializer(serializers.ModelSerializer):
    """A question and the ids of its choices (created through the choices endpoint)."""

    choices = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = Question
        fields = ("id", "question_text", "pub_date", "choices")


class ChoiceSerializer(serializers.ModelSerializer):
    """A choice, its question and the ids of the users who picked it."""

    class Meta:
        model = Choice
        fields = ("id", "question", "choice_text", "voters")


class PollChoiceSerializer(serializers.HyperlinkedModelSerializer):
    """A choice inside a poll: its link, its text, and its voters as links and names."""

    voters = serializers.HyperlinkedRelatedField(many=True, read_only=True, view_name="user-detail")
    voter_names = serializers.SlugRelatedField(
        source="voters", many=True, read_only=True, slug_field="username"
    )

    class Meta:
        model = Choice
        fields = ("url", "id", "choice_text", "voters", "voter_names")


class PollSerializer(serializers.HyperlinkedModelSerializer):
    """A question with its choices nested: hyperlinks, and data from three tables.

    Its output changes when the question, any of its choices, or the username of any
    voter changes, and it holds absolute URLs (host and scheme of the request): the
    fast path's harder case.
    """

    choices = PollChoiceSerializer(many=True, read_only=True)

    class Meta:
        model = Question
        fields = ("url", "id", "question_text", "pub_date", "choices")
