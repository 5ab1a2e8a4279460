"""``instcache warm``: fills the cache batch by batch, so the API's first reads are hits."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from drf_instcache.testing.ports import free_port
from example.polls.models import Choice, Question
from tests.ops.conftest import Seeded, cached_pks, each_backend, instcache


def all_pks(model) -> list:
    return list(model.objects.values_list("pk", flat=True))


@each_backend
def test_warm_caches_every_row_of_every_discovered_model(backend, seeded: Seeded):
    assert cached_pks(backend, "question", all_pks(Question)) == set()

    output = instcache("warm").stdout

    assert cached_pks(backend, "question", all_pks(Question)) == set(all_pks(Question))
    assert cached_pks(backend, "choice", all_pks(Choice)) == set(all_pks(Choice))
    assert cached_pks(backend, "user", all_pks(User)) == set(all_pks(User))
    assert (
        f"warmed polls.question (PollCache) version default: {seeded.questions} rows, "
        f"0 already cached, {seeded.questions} stored"
    ) in output


@each_backend
def test_warm_twice_stores_nothing_the_second_time(backend, seeded: Seeded):
    instcache("warm", "question")
    output = instcache("warm", "question").stdout
    assert f"{seeded.questions} already cached, 0 stored" in output


def test_warm_named_models_only(backend, seeded: Seeded):
    instcache("warm", "polls.choice", "USER")
    assert cached_pks(backend, "question", all_pks(Question)) == set()
    assert cached_pks(backend, "choice", all_pks(Choice)) == set(all_pks(Choice))
    assert cached_pks(backend, "user", all_pks(User)) == set(all_pks(User))


def test_warm_reads_the_table_in_batches_of_constant_cost(
    backend, seeded: Seeded, django_assert_num_queries
):
    # 12 questions in batches of 5: a count for the progress bar, then per batch one pk
    # query and PollCache's loader_many (rows + choices), and one last empty pk page.
    with django_assert_num_queries(1 + 3 * 3 + 1):
        instcache("warm", "question", "--batch-size", "5")
    assert cached_pks(backend, "question", all_pks(Question)) == set(all_pks(Question))


def test_after_warm_the_first_api_read_is_all_hits(backend, seeded: Seeded, settings):
    settings.DRF_INSTCACHE_DEBUG_HEADERS = True
    instcache("warm", "question")
    response = APIClient().get("/api/questions/")
    assert response.status_code == 200
    assert response["X-Instcache"] == f"hits={seeded.questions} misses=0 fallbacks=0 errors=0"


def test_warm_prints_no_progress_bar_when_stderr_is_not_a_terminal(backend, seeded: Seeded):
    assert instcache("warm").stderr == ""


def test_warm_fails_clearly_when_the_backend_is_down(db, settings):
    settings.DRF_INSTCACHE_BACKEND = (
        f"redis://127.0.0.1:{free_port()}/0?socket_connect_timeout=0.2&socket_timeout=0.2"
    )
    Question.objects.create(question_text="Up?", pub_date="2024-01-01T00:00:00Z")
    with pytest.raises(CommandError, match="the cache backend is unavailable"):
        instcache("warm", "question")


def test_warm_rejects_an_unknown_version(backend, seeded: Seeded):
    with pytest.raises(CommandError, match="no cache version 'v9'"):
        instcache("warm", "question", "--cache-version", "v9")


class Terminal(io.StringIO):
    """Output that says it is a terminal, as stderr is when a person runs the command."""

    def isatty(self) -> bool:
        return True


def test_warm_draws_a_progress_bar_on_a_terminal(backend, seeded: Seeded):
    terminal = Terminal()
    call_command("instcache", "warm", "question", stdout=io.StringIO(), stderr=terminal)
    drawn = terminal.getvalue()
    total = seeded.questions
    assert drawn.startswith("\rwarming polls.question [")
    assert drawn.endswith(f"[{'#' * 30}] {total}/{total}\n")
