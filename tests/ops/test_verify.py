"""``instcache verify [--fix]``: finds every entry that disagrees with its row, and repairs it."""

from __future__ import annotations

import pytest
from django.core.management import CommandError
from rest_framework.test import APIClient

from drf_instcache import ops
from drf_instcache.cache import BaseCache
from drf_instcache.discovery import Target
from example.polls.cache import PollCache
from example.polls.models import Choice, Question
from tests.ops.conftest import Seeded, each_backend, instcache


def corrupt_field(backend, cache: BaseCache, question: Question, text: str) -> str:
    """Rewrite a question's entry by hand with a wrong question_text; returns its key."""
    key = cache.key_for("default", "question", question.pk)
    entry = cache.decode_entry("question", "default", backend.get_many([key])[key])
    entry["question_text"] = text
    backend.set_many({key: cache.encode_entry("question", "default", entry)})
    return key


@each_backend
def test_verify_of_a_freshly_warmed_cache_finds_nothing(backend, seeded: Seeded):
    instcache("warm")
    output = instcache("verify").stdout
    assert f"verified polls.question (PollCache): {seeded.questions} rows, " in output
    assert f"{seeded.questions} cached entries, 0 differ" in output


@each_backend
def test_verify_reports_corrupted_and_stale_entries_and_fix_repairs_them(backend, seeded: Seeded):
    cache = PollCache()
    instcache("warm")
    first, second, third = Question.objects.order_by("pk")[:3]
    edited = corrupt_field(backend, cache, first, "Hand-edited?")
    garbage = cache.key_for("default", "question", second.pk)
    backend.set_many({garbage: b"\xff not an entry"})
    # Changed behind the cache's back: update() sends no signal.
    Question._base_manager.filter(pk=third.pk).update(question_text="Changed in SQL?")
    stale = cache.key_for("default", "question", third.pk)

    with pytest.raises(CommandError, match="3 cached entries differ from the database"):
        instcache("verify", "question")
    report = instcache("verify", "question", fix=True).stdout

    assert f"stale: {edited} (polls.question pk={first.pk}): fields question_text" in report
    assert f"corrupt: {garbage} (polls.question pk={second.pk})" in report
    assert f"stale: {stale} (polls.question pk={third.pk}): fields question_text" in report
    assert "fixed 3 entries" in report
    assert "0 differ" in instcache("verify").stdout  # no CommandError: all repaired
    entries = APIClient().get("/api/questions/").json()["results"]
    by_pk = {entry["id"]: entry["question_text"] for entry in entries}
    assert by_pk[first.pk] == first.question_text
    assert by_pk[second.pk] == second.question_text
    assert by_pk[third.pk] == "Changed in SQL?"


def test_verify_names_every_differing_field(backend, seeded: Seeded):
    cache = PollCache()
    instcache("warm", "choice")
    choice = Choice.objects.order_by("pk").first()
    key = cache.key_for("default", "choice", choice.pk)
    entry = cache.decode_entry("choice", "default", backend.get_many([key])[key])
    entry["choice_text"] = "other"
    entry["voters:PKList"] = {"model": "auth.user", "pks": [999999]}
    del entry["id"]
    backend.set_many({key: cache.encode_entry("choice", "default", entry)})

    output = instcache("verify", "choice", fix=True).stdout

    fields = "fields id, choice_text, voters:PKList"
    assert f"stale: {key} (polls.choice pk={choice.pk}): {fields}" in output


def test_verify_counts_an_entry_of_another_model_under_the_key_as_corrupt(backend, seeded):
    cache = PollCache()
    instcache("warm", "question")
    question = Question.objects.order_by("pk").first()
    key = cache.key_for("default", "question", question.pk)
    intruder = cache.encode_entry("choice", "default", {"id": question.pk})
    backend.set_many({key: intruder})

    output = instcache("verify", "question", fix=True).stdout

    assert f"corrupt: {key} (polls.question pk={question.pk})" in output
    assert "fixed 1 entry" in output


def test_verify_lists_twenty_differences_unless_verbose(backend, seeded: Seeded):
    cache = PollCache()
    instcache("warm", "choice")
    pks = list(Choice.objects.order_by("pk").values_list("pk", flat=True)[:25])

    def corrupt_all() -> None:
        backend.set_many({cache.key_for("default", "choice", pk): b"garbage" for pk in pks})

    corrupt_all()
    quiet = instcache("verify", "choice", fix=True).stdout
    corrupt_all()
    verbose = instcache("verify", "choice", fix=True, verbosity=2).stdout

    assert "25 differ" in quiet
    assert quiet.count("corrupt: ") == 20
    assert "... and 5 more (-v 2 lists them all)" in quiet
    assert verbose.count("corrupt: ") == 25


class HidingCache(PollCache):
    """PollCache, except that questions ending in '(draft)' get no entry."""

    def question_default_serializer(self, obj):
        if obj is not None and obj.question_text.endswith("(draft)"):
            return None
        return super().question_default_serializer(obj)


def test_an_entry_for_a_row_that_should_have_none_is_unexpected_and_fix_deletes_it(
    backend, seeded: Seeded
):
    instcache("warm", "question")
    draft = Question.objects.order_by("pk").first()
    Question._base_manager.filter(pk=draft.pk).update(question_text="Unfinished (draft)")
    target = Target(HidingCache, Question, ("default",))

    report = ops.verify(target, fix=True)

    (difference,) = report.differences
    assert (difference.kind, difference.pk) == (ops.UNEXPECTED, draft.pk)
    assert report.fixed == 1
    assert backend.get_many([difference.key]) == {}
    assert ops.verify(target).differences == []
