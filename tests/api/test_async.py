"""``DRF_INSTCACHE_ASYNC = True``: refreshes run as a Celery task (eagerly, in tests)."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from celery import Celery
from celery.signals import task_prerun

from drf_instcache import signals
from drf_instcache.exceptions import ImproperlyConfigured
from example.polls.cache import PollCache
from example.polls.models import Choice
from tests.api.conftest import Polls, every_backend


@pytest.fixture
def task_runs(settings) -> Iterator[list[tuple]]:
    """An eager Celery app, ASYNC on, and the (name, args) of every task that ran."""
    app = Celery("drf-instcache-tests", set_as_current=True)
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    settings.DRF_INSTCACHE_ASYNC = True
    runs: list[tuple] = []

    def record(sender=None, args=None, **kwargs) -> None:
        runs.append((sender.name, tuple(args or ())))

    task_prerun.connect(record, weak=False, dispatch_uid="api-tests-task-runs")
    yield runs
    task_prerun.disconnect(dispatch_uid="api-tests-task-runs")
    app.close()


@every_backend
def test_writes_refresh_the_cache_through_the_task(api, polls: Polls, task_runs):
    question = polls.questions[0]
    api.get(f"/api/questions/{question.pk}/")
    response = api.patch(f"/api/questions/{question.pk}/", {"question_text": "Async?"})
    assert response.status_code == 200
    # One task per write, carrying all of its refreshes (one batched cascade).
    task_args = ("example.polls.cache.PollCache", [["question", question.pk, None, False]])
    assert ("drf_instcache.update_caches", task_args) in task_runs
    assert api.get(f"/api/questions/{question.pk}/").json()["question_text"] == "Async?"


def test_deletes_forget_inline_and_cascade_through_tasks(api, polls: Polls, task_runs):
    choice = polls.choices[0]
    voter_ids = list(choice.voters.values_list("pk", flat=True))
    api.get(f"/api/questions/{choice.question_id}/")
    for pk in voter_ids:
        api.get(f"/api/users/{pk}/")

    assert api.delete(f"/api/choices/{choice.pk}/").status_code == 204

    refreshed = {(row[0].lower(), row[1]) for _, args in task_runs for row in args[1]}
    assert ("question", choice.question_id) in refreshed
    assert {("user", pk) for pk in voter_ids} <= refreshed
    assert ("choice", choice.pk) not in refreshed  # forgotten in the request, not a task
    assert choice.pk not in api.get(f"/api/questions/{choice.question_id}/").json()["choices"]
    for pk in voter_ids:
        assert choice.pk not in api.get(f"/api/users/{pk}/").json()["votes"]


def test_m2m_changes_go_through_the_task(api, polls: Polls, task_runs):
    choice, user = Choice.objects.get(pk=polls.choices[5].pk), polls.users[0]
    api.get(f"/api/users/{user.pk}/")
    choice.voters.add(user)
    assert choice.pk in api.get(f"/api/users/{user.pk}/").json()["votes"]
    assert {row[0] for _, args in task_runs for row in args[1]} >= {"choice", "user"}


def test_the_task_can_be_called_directly(polls: Polls):
    from drf_instcache.tasks import update_cache_task

    question = polls.questions[1]
    path = signals.cache_class_path(PollCache)
    assert update_cache_task(path, "Question", question.pk, None) == 1
    assert update_cache_task(path, "Question", question.pk, "default") == 1


def test_async_without_celery_is_a_clear_configuration_error(settings, monkeypatch):
    monkeypatch.setitem(sys.modules, "celery", None)  # as if celery were not installed
    monkeypatch.delitem(sys.modules, "drf_instcache.tasks", raising=False)
    settings.DRF_INSTCACHE_ASYNC = True
    with pytest.raises(ImproperlyConfigured, match=r"drf-instcache\[celery\]"):
        signals.connect(PollCache)
    settings.DRF_INSTCACHE_ASYNC = False
    signals.connect(PollCache)  # fine without ASYNC: Celery is optional
