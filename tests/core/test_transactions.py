"""The dirty-transaction rule, on real commits and rollbacks (no TestCase transaction).

Inside an atomic block that has written, ``get_instances`` reads nothing from the cache
and stores nothing; fills made inside a clean block wait for its commit and vanish with
a rollback.
"""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from drf_instcache import transactions
from example.polls.cache import PollCache
from example.polls.models import Question
from tests.core.conftest import PUB_DATE, CountingBackend

pytestmark = pytest.mark.django_db(transaction=True)


class Rollback(Exception):
    pass


@pytest.fixture
def question() -> Question:
    return Question.objects.create(question_text="Committed?", pub_date=PUB_DATE)


def cached_text(cache: PollCache, question: Question) -> str:
    return cache.get_instances([("Question", question.pk, None)])[("Question", question.pk)][0][
        "question_text"
    ]


def stored(cache: PollCache, question: Question) -> bytes | None:
    key = cache.key_for("default", "question", question.pk)
    return cache.backend.get_many([key]).get(key)  # type: ignore[union-attr]


def test_only_a_write_inside_an_atomic_block_makes_it_dirty(question):
    Question._base_manager.filter(pk=question.pk).update(question_text="autocommit")
    assert not transactions.dirty()
    with transaction.atomic():
        list(Question.objects.select_for_update().filter(pk=question.pk))
        assert transactions.in_transaction() and not transactions.dirty()
        Question._base_manager.filter(pk=question.pk).update(question_text="in a transaction")
        assert transactions.dirty()
    assert not transactions.dirty() and not transactions.in_transaction()


def test_a_rolled_back_savepoint_takes_its_write_away(question):
    with transaction.atomic():
        try:
            with transaction.atomic():
                question.save()
                assert transactions.dirty()
                raise Rollback
        except Rollback:
            pass
        assert not transactions.dirty(), "the write was undone with its savepoint"
        question.save()
        assert transactions.dirty(), "a later write marks the block again"


def test_raw_sql_counts_as_a_write(question):
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {Question._meta.db_table} SET question_text = %s WHERE id = %s",
                ["raw", question.pk],
            )
        assert transactions.dirty()


def test_reads_after_a_write_bypass_the_cache_and_fill_nothing(backend: CountingBackend, question):
    cache = PollCache(backend=backend)
    assert cached_text(cache, question) == "Committed?"  # cached, committed
    backend.reset_counts()
    with transaction.atomic():
        Question._base_manager.filter(pk=question.pk).update(question_text="Uncommitted")
        assert cached_text(cache, question) == "Uncommitted", "read your own writes"
        assert backend.calls == {}, "the backend was not asked"
        transaction.set_rollback(True)
    assert cached_text(cache, question) == "Committed?"
    assert b"Uncommitted" not in (stored(cache, question) or b"")


def test_a_fill_inside_a_clean_block_waits_for_the_commit(backend: CountingBackend, question):
    cache = PollCache(backend=backend)
    with transaction.atomic():
        assert cached_text(cache, question) == "Committed?"
        assert stored(cache, question) is None or b"Committed?" not in stored(cache, question)
    assert b"Committed?" in (stored(cache, question) or b"")


def test_a_fill_inside_a_rolled_back_block_is_dropped(backend: CountingBackend, question):
    cache = PollCache(backend=backend)
    with pytest.raises(Rollback), transaction.atomic():
        cached_text(cache, question)
        raise Rollback
    value = stored(cache, question)
    assert value is None or b"Committed?" not in value, "nothing read in it stays"


def test_a_fill_waits_for_every_open_transaction():
    ran: list[str] = []
    with transaction.atomic():
        transactions.unless_rolled_back(lambda: ran.append("filled"))
        assert ran == []
    assert ran == ["filled"]
    transactions.unless_rolled_back(lambda: ran.append("at once"))
    assert ran == ["filled", "at once"]


def test_at_the_baseline_invalidation_runs_at_once_and_writes_do_not_mark():
    ran: list[str] = []
    with transaction.atomic():  # stands for a TestCase's transaction
        transactions.set_baseline()
        try:
            transactions.after_commit(lambda: ran.append("now"))
            assert ran == ["now"]
            Question.objects.create(question_text="setup", pub_date=PUB_DATE)
            assert not transactions.dirty() and not transactions.in_transaction()
            with transaction.atomic():  # a block the test opens itself
                Question.objects.create(question_text="inner", pub_date=PUB_DATE)
                assert transactions.dirty()
                transactions.after_commit(lambda: ran.append("on commit"))
                assert ran == ["now"]
        finally:
            transactions.clear_baseline()
    assert ran == ["now", "on commit"]
