"""``instcache inspect MODEL PK``: the key, the server-side key and the decoded entry."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError

from example.polls.models import Question
from tests.ops.conftest import Seeded, each_backend, instcache


@each_backend
def test_inspect_shows_the_keys_and_the_decoded_entry(backend, seeded: Seeded, namespace_url):
    question = Question.objects.order_by("pk").first()
    instcache("warm", "question")

    output = instcache("inspect", "question", str(question.pk)).stdout

    prefix = namespace_url.rsplit("prefix=", 1)[1]
    assert f"polls.question (PollCache) pk={question.pk} version default" in output
    assert f"key:        dic:default:question:{question.pk}\n" in output
    assert f"server key: {prefix}:dic:default:question:{question.pk}\n" in output
    assert "matches the database: yes" in output
    assert json.dumps(question.question_text) in output
    assert '"pub_date:DateTime"' in output


def test_inspect_json_holds_the_entry_and_the_fresh_serialization(backend, seeded: Seeded):
    question = Question.objects.order_by("pk").last()
    instcache("warm", "question")
    Question._base_manager.filter(pk=question.pk).update(question_text="Changed in SQL?")

    (found,) = json.loads(instcache("inspect", "polls.question", str(question.pk), "--json").stdout)

    assert found["cached"] is True
    assert found["matches_database"] is False
    assert found["entry"]["question_text"] == question.question_text
    assert found["expected"]["question_text"] == "Changed in SQL?"
    assert found["size"] > 0


def test_inspect_says_when_an_instance_is_not_cached(backend, seeded: Seeded):
    question = Question.objects.order_by("pk").first()
    assert "not cached (the row exists)" in instcache("inspect", "question", question.pk).stdout
    assert "not cached (the row gives no entry)" in instcache("inspect", "question", 0).stdout


def test_inspect_shows_an_unreadable_entry(backend, seeded: Seeded):
    question = Question.objects.order_by("pk").first()
    backend.set_many({f"dic:default:question:{question.pk}": b"\xffgarbage"})
    output = instcache("inspect", "question", question.pk).stdout
    assert "matches the database: NO" in output
    assert "unreadable: " in output


def test_inspect_of_an_unknown_model_lists_the_known_ones(backend, seeded: Seeded):
    with pytest.raises(CommandError) as raised:
        instcache("inspect", "poll", 1)
    assert str(raised.value) == (
        "unknown model 'poll'; known models: auth.user, polls.choice, polls.question"
    )
