"""Bulk writes through ``InstcacheQuerySet`` leave no stale entry; plain ones do.

Every test warms the instance-cache API (``/api/``) and the fast path (``/api/fast/``),
runs one bulk operation on the sample models (whose managers mix in
``InstcacheQuerySetMixin``), commits or rolls back, and demands that every list and
retrieve answers what plain DRF (``/api/plain/``) answers now, with and without cached
list queries, on a real PostgreSQL database and real cache backends.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import QuerySet
from django.test.utils import CaptureQueriesContext

from drf_instcache import rendered
from drf_instcache import settings as instcache_settings
from drf_instcache.bulk import check_bulk_managers, has_mixin, install
from drf_instcache.invalidation.bulk import queryset as bulk_queryset
from example.polls.cache import PollCache
from example.polls.models import Choice, Question
from example.polls.views import FastChoiceViewSet, FastQuestionViewSet
from tests.fastpath.conftest import Polls, answers, every_backend, make_polls

pytestmark = pytest.mark.usefixtures("list_queries")

API = {
    "/api/": ("users", "questions", "choices"),
    "/api/fast/": ("users", "questions", "choices", "polls"),
}


def stale_views(api) -> list[str]:
    """The cached APIs (instance, fast) that do not answer what plain DRF answers now."""
    stale = []
    for root, resources in API.items():
        plain = answers(api, "/api/plain/", resources)
        for _ in range(2):  # cold parts, then warm
            if answers(api, root, resources) != plain:
                stale.append(root)
                break
    return stale


@pytest.fixture
def warm(api, polls: Polls) -> Polls:
    assert stale_views(api) == []
    return polls


def _choices_of(polls: Polls, question: Question) -> list[Choice]:
    return [choice for choice in polls.choices if choice.question_id == question.pk]


# -- the operations (each given a queryset factory: the model's manager, or plain) --------
def op_update(qs: Callable, polls: Polls) -> None:
    qs(Choice).filter(question=polls.questions[0]).update(choice_text="Edited in bulk")


def op_update_question(qs: Callable, polls: Polls) -> None:
    qs(Question).filter(pk__in=[q.pk for q in polls.questions[:2]]).update(question_text="Bulk?")


def op_update_moves_fk(qs: Callable, polls: Polls) -> None:
    moved = _choices_of(polls, polls.questions[0])
    qs(Choice).filter(pk__in=[c.pk for c in moved]).update(question=polls.questions[2])


def op_bulk_update(qs: Callable, polls: Polls) -> None:
    objs = _choices_of(polls, polls.questions[0])
    for obj in objs:
        obj.choice_text = f"{obj.choice_text} (bulk_update)"
    objs[0].question = polls.questions[1]  # and one moves
    qs(Choice).bulk_update(objs, ["choice_text", "question"])


def op_bulk_create(qs: Callable, polls: Polls) -> None:
    qs(Choice).bulk_create(
        Choice(question=polls.questions[1], choice_text=f"New {n}") for n in range(3)
    )


def op_delete(qs: Callable, polls: Polls) -> None:
    # The choices have voters: Django deletes those many-to-many rows silently.
    qs(Choice).filter(question=polls.questions[0]).delete()


def op_delete_cascade(qs: Callable, polls: Polls) -> None:
    qs(Question).filter(pk=polls.questions[1].pk).delete()  # its choices go with it


OPERATIONS = {
    "update": op_update,
    "update-question": op_update_question,
    "update-moves-fk": op_update_moves_fk,
    "bulk_update": op_bulk_update,
    "bulk_create": op_bulk_create,
    "delete": op_delete,
    "delete-cascade": op_delete_cascade,
}
SILENT = ("update", "update-question", "update-moves-fk", "bulk_update", "bulk_create")
"""The operations Django runs without any signal."""


def manager(model):
    return model.objects


def plain(model):
    return QuerySet(model=model)  # a queryset without the mixin


operations = pytest.mark.parametrize("operation", list(OPERATIONS))


def test_the_sample_models_opt_in():
    assert has_mixin(Question) and has_mixin(Choice)
    assert isinstance(Choice.objects.all(), QuerySet)
    # related managers are built from the default manager's class
    assert type(Question(pk=1).choices.all()).__name__ == "InstcacheQuerySet"


@operations
def test_committed_bulk_write_leaves_nothing_stale(api, warm: Polls, operation: str):
    with transaction.atomic():
        OPERATIONS[operation](manager, warm)
    assert stale_views(api) == []


@every_backend
@pytest.mark.parametrize("operation", ["update-moves-fk", "bulk_update", "delete-cascade"])
def test_every_backend(api, warm: Polls, operation: str):
    with transaction.atomic():
        OPERATIONS[operation](manager, warm)
    assert stale_views(api) == []


@operations
def test_autocommit_bulk_write_leaves_nothing_stale(api, warm: Polls, operation: str):
    OPERATIONS[operation](manager, warm)
    assert stale_views(api) == []


def _entries(polls: Polls) -> dict[str, bytes | None]:
    """The raw bytes of a few warm entries of both levels."""
    backend, cache = instcache_settings.get_backend(), PollCache()
    keys = [cache.key_for("default", "question", q.pk) for q in polls.questions]
    keys += [cache.key_for("default", "choice", c.pk) for c in polls.choices]
    keys += [rendered.plan_for_view(FastQuestionViewSet).key(str(q.pk)) for q in polls.questions]
    keys += [rendered.plan_for_view(FastChoiceViewSet).key(str(c.pk)) for c in polls.choices]
    found = backend.get_many(keys)
    return {key: found.get(key) for key in keys}


@operations
def test_rolled_back_bulk_write_invalidates_nothing(api, warm: Polls, operation: str):
    before = _entries(warm)
    assert all(before.values())
    with pytest.raises(RuntimeError), transaction.atomic():
        OPERATIONS[operation](manager, warm)
        raise RuntimeError("roll back")
    assert _entries(warm) == before  # not even dropped
    assert stale_views(api) == []


@pytest.mark.parametrize("operation", SILENT)
def test_without_the_mixin_silent_bulk_writes_leave_entries_stale(api, warm: Polls, operation: str):
    """Why the opt-in is needed: Django sends no signal for these operations."""
    with transaction.atomic():
        OPERATIONS[operation](plain, warm)
    assert stale_views(api) != []


@pytest.mark.parametrize("operation", ["delete", "delete-cascade"])
def test_without_the_mixin_delete_is_covered_row_by_row(api, warm: Polls, operation: str):
    """QuerySet.delete() sends pre/post_delete per row (receivers are connected): fresh,
    but at a cost that grows with the rows (see the query-count test)."""
    with transaction.atomic():
        OPERATIONS[operation](plain, warm)
    assert stale_views(api) == []


# -- costs ----------------------------------------------------------------------------------
def _queries(work: Callable[[], None]) -> int:
    with CaptureQueriesContext(connection) as captured, transaction.atomic():
        work()
    return len(captured.captured_queries)


@pytest.mark.parametrize("kind", ["update", "delete", "bulk_update", "bulk_create"])
def test_queries_do_not_grow_with_the_rows(api, kind: str):
    """One batch per operation: the same number of queries for 2 rows as for 12."""

    def run(size: int) -> int:
        data = make_polls(questions=1, choices=size, users=size, votes=2)
        instcache_settings.get_backend().clear()  # make_polls writes silently
        question = data.questions[0]
        stale_views(api)  # warm
        if kind == "update":
            return _queries(
                lambda: Choice.objects.filter(question=question).update(choice_text="x")
            )
        if kind == "delete":
            return _queries(lambda: Choice.objects.filter(question=question).delete())
        if kind == "bulk_update":
            for choice in data.choices:
                choice.choice_text = "y"
            return _queries(lambda: Choice.objects.bulk_update(data.choices, ["choice_text"]))
        return _queries(
            lambda: Choice.objects.bulk_create(
                Choice(question=question, choice_text=f"n{n}") for n in range(size)
            )
        )

    small, large = run(2), run(12)
    assert small == large, (small, large)
    assert stale_views(api) == []


def test_a_plain_delete_is_batched_too_and_leaves_nothing_stale(api):
    """A delete Django collects (here through a plain queryset) holds its rows at
    ``pre_delete`` and invalidates them in one batch: its cost does not grow with them."""

    def run(size: int) -> int:
        data = make_polls(questions=1, choices=size, users=size, votes=2)
        instcache_settings.get_backend().clear()  # make_polls' rows are silent writes
        assert stale_views(api) == []
        count = _queries(lambda: plain(Choice).filter(question=data.questions[0]).delete())
        assert stale_views(api) == []
        return count

    assert run(12) == run(2)


def test_an_instance_delete_cascading_to_its_rows_costs_the_same_for_2_and_12(api):
    def run(size: int) -> int:
        data = make_polls(questions=1, choices=size, users=size, votes=2)
        instcache_settings.get_backend().clear()  # make_polls' rows are silent writes
        assert stale_views(api) == []
        question = plain(Question).get(pk=data.questions[0].pk)
        count = _queries(question.delete)  # its Choices go with it (on_delete=CASCADE)
        assert stale_views(api) == []
        return count

    assert run(12) == run(2)


# -- a model you cannot edit, raw SQL, the check --------------------------------------------
@pytest.fixture
def plain_user():
    """auth.User as it is without ``install()`` (the example installs it at start-up)."""
    declared = [m for b in User.__mro__ if hasattr(b, "_meta") for m in b._meta.local_managers]
    every = (*declared, *User._meta.managers, User._default_manager)
    classes = {id(m): (m, type(m)) for m in every}
    for each, original in classes.values():
        if has_mixin(User):
            each.__class__ = next(
                c for c in original.__mro__ if c.__module__ != bulk_queryset.__name__
            )
    yield
    for each, original in classes.values():
        each.__class__ = original


def test_install_patches_a_third_party_model(api, warm: Polls, plain_user):
    assert not has_mixin(User)
    with transaction.atomic():
        plain(User).filter(pk=warm.users[0].pk).update(username="unseen")
    assert stale_views(api) != []  # the silent write
    install(User)
    install(User)  # idempotent
    assert has_mixin(User)
    assert type(User.objects.all()).__name__ == "InstcacheQuerySet"
    with transaction.atomic():
        User.objects.filter(pk=warm.users[0].pk).update(username="renamed")
        users = list(User.objects.filter(pk__in=[u.pk for u in warm.users]))
        for number, user in enumerate(users):
            user.username = f"bulk{number}"
        User.objects.bulk_update(users, ["username"])
    assert stale_views(api) == []


def test_raw_sql_with_the_helpers(api, warm: Polls):
    import drf_instcache
    from drf_instcache.bulk import invalidating

    choice = warm.choices[0]
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {Choice._meta.db_table} SET choice_text = %s WHERE id = %s",
                ["raw", choice.pk],
            )
        drf_instcache.invalidate(Choice, [choice.pk])
        drf_instcache.tables_changed([Choice._meta.db_table])
    assert stale_views(api) == []
    moved = warm.choices[1]
    with transaction.atomic(), invalidating(Choice, [moved.pk]):
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {Choice._meta.db_table} SET question_id = %s WHERE id = %s",
                [warm.questions[2].pk, moved.pk],
            )
        drf_instcache.tables_changed([Choice._meta.db_table])
    assert stale_views(api) == []


def test_raw_sql_without_the_helpers_is_stale(api, warm: Polls):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"UPDATE {Choice._meta.db_table} SET choice_text = %s", ["raw, unannounced"])
    assert stale_views(api) != []


def test_the_check_names_cached_models_without_the_mixin(plain_user):
    messages = check_bulk_managers()
    assert [message.obj for message in messages] == [User]  # Question, Choice opt in
    assert [message.id for message in messages] == ["drf_instcache.I030"]


def test_the_example_installs_user():
    assert has_mixin(User)
    assert check_bulk_managers() == []


def test_install_survives_the_registry_clearing_its_caches():
    """A model registered later clears every model's manager copies: they are remade
    from the declared managers (User's come from AbstractUser), which install() patched."""
    assert has_mixin(User)
    apps.clear_cache()
    assert has_mixin(User)
