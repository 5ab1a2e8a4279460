"""Reading a serializer: its dependencies, its request reads, its fingerprint.

No database or cache here: :func:`drf_instcache.dependencies.analyze` only reads classes.
"""

from __future__ import annotations

from typing import ClassVar

from django.contrib.auth.models import User
from rest_framework import serializers

from drf_instcache.dependencies import FORWARD, M2M, REVERSE, analyze, parse_path, reads_context
from example.polls.models import Choice, Question
from example.polls.serializers import (
    ChoiceSerializer,
    PollSerializer,
    QuestionSerializer,
    UserSerializer,
)


def summary(serializer_class, model, declared=None) -> set[tuple[str, str, bool]]:
    analysis = analyze(serializer_class, model, declared)
    return {(d.lookup, d.target.__name__, d.embeds) for d in analysis.dependencies}


def test_the_example_serializers_dependencies():
    # Primary keys only: membership matters, columns do not.
    assert summary(QuestionSerializer, Question) == {("choices", "Choice", False)}
    assert summary(UserSerializer, User) == {("votes", "Choice", False)}
    assert summary(ChoiceSerializer, Choice) == {
        ("question", "Question", False),
        ("voters", "User", False),
    }
    # Nested: the choices' columns, and the voters' usernames (slugs).
    assert summary(PollSerializer, Question) == {
        ("choices", "Choice", True),
        ("choices__voters", "User", True),
    }


def test_relation_steps_know_where_membership_is_stored():
    (choices,) = parse_path(Question, "choices")
    assert (choices.kind, choices.link_attname) == (REVERSE, "question_id")
    (question,) = parse_path(Choice, "question")
    assert question.kind == FORWARD
    (voters,) = parse_path(Choice, "voters")
    assert (voters.kind, voters.forward_m2m, voters.through) == (M2M, True, Choice.voters.through)
    (votes,) = parse_path(User, "votes")
    assert (votes.kind, votes.forward_m2m) == (M2M, False)


class DottedSourceSerializer(serializers.ModelSerializer):
    question_text = serializers.CharField(source="question.question_text")
    question_id_again = serializers.IntegerField(source="question_id")
    first_voter = serializers.CharField(source="question.choices")

    class Meta:
        model = Choice
        fields = ("id", "question_text", "question_id_again", "first_voter")


def test_dotted_sources_follow_relations():
    assert summary(DottedSourceSerializer, Choice) == {
        ("question", "Question", True),  # a column of the question is shown
        ("question__choices", "Choice", True),
    }


class PropertySerializer(serializers.ModelSerializer):
    shout = serializers.SerializerMethodField()
    label = serializers.CharField(source="__str__")

    class Meta:
        model = Question
        fields = ("id", "shout", "label")

    def get_shout(self, question):
        return question.question_text.upper()


def test_method_fields_and_properties_are_opaque_unless_declared():
    analysis = analyze(PropertySerializer, Question)
    assert {finding.where for finding in analysis.opaque} == {
        "PropertySerializer.shout",
        "PropertySerializer.label",
    }
    declared = analyze(PropertySerializer, Question, {"shout": [], "label": ["choices"]})
    assert declared.opaque == []
    assert {(d.lookup, d.embeds) for d in declared.dependencies} == {("choices", True)}


class AuthoredSerializer(serializers.ModelSerializer):
    seen_by = serializers.SerializerMethodField()

    class Meta:
        model = Question
        fields = ("id", "seen_by")
        rendered_dependencies: ClassVar[dict[str, list[str]]] = {"seen_by": []}

    def get_seen_by(self, question):
        request = self.context.get("request")
        return request.user.username if request else None


class ContextRepresentation(serializers.ModelSerializer):
    class Meta:
        model = Question
        fields = ("id",)

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["viewer"] = self.context["view"].action
        return data


def test_reads_of_the_serializer_context_are_found():
    assert [f.where for f in analyze(AuthoredSerializer, Question).context_reads] == [
        "AuthoredSerializer.seen_by"
    ]
    assert [f.where for f in analyze(ContextRepresentation, Question).context_reads] == [
        "ContextRepresentation(*)"
    ]
    assert analyze(PollSerializer, Question).context_reads == []  # hyperlinks are handled
    assert not reads_context(PropertySerializer.get_shout)


def test_hyperlinks_and_file_urls_make_the_output_depend_on_the_host():
    assert analyze(PollSerializer, Question).hyperlinked
    assert not analyze(QuestionSerializer, Question).hyperlinked


class CustomListSerializer(serializers.ListSerializer):
    def to_representation(self, data):
        return {"items": super().to_representation(data)}


class WrappedListSerializer(serializers.ModelSerializer):
    class Meta:
        model = Question
        fields = ("id",)
        list_serializer_class = CustomListSerializer


def test_a_list_rendered_as_a_whole_cannot_be_cached_per_instance():
    (error,) = analyze(WrappedListSerializer, Question).errors
    assert "CustomListSerializer" in error.detail


def test_bad_declared_paths_are_errors():
    (error,) = analyze(PropertySerializer, Question, {"shout": ["choices__nope"]}).bad_declarations
    assert "'nope'" in error.detail


def test_the_fingerprint_follows_the_definition():
    base = analyze(QuestionSerializer, Question).fingerprint
    assert analyze(QuestionSerializer, Question).fingerprint == base  # stable

    class Renamed(QuestionSerializer):
        pass

    class MoreFields(QuestionSerializer):
        class Meta(QuestionSerializer.Meta):
            fields = ("id", "question_text")

    class OtherCode(QuestionSerializer):
        def to_representation(self, instance):
            return {"id": instance.pk}

    fingerprints = {analyze(cls, Question).fingerprint for cls in (Renamed, MoreFields, OtherCode)}
    assert base not in fingerprints and len(fingerprints) == 3
