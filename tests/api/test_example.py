"""The sample project's tooling: the ``seed_polls`` command and ``python -m example.demo``."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from django.contrib.auth.models import User
from django.core.management import call_command

from example.polls.models import Choice, Question
from tests.api.conftest import cached_bytes

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def seed(**options) -> str:
    out = io.StringIO()
    call_command("seed_polls", stdout=out, **options)
    return out.getvalue()


def snapshot() -> list[tuple]:
    return [
        *Question.objects.order_by("pk").values_list("question_text", "pub_date"),
        *Choice.objects.order_by("pk").values_list("question__question_text", "choice_text"),
        *Choice.voters.through.objects.order_by("pk").values_list(
            "user__username", "choice__choice_text"
        ),
    ]


def test_seed_polls_creates_what_it_says():
    assert seed(questions=5, choices=2, users=4, votes=2) == (
        "seeded 4 users, 5 questions, 10 choices, 8 votes\n"
    )
    assert Question.objects.count() == 5
    assert Choice.objects.count() == 10
    assert User.objects.filter(username__startswith="voter").count() == 4
    assert all(user.votes.count() == 2 for user in User.objects.all())


def test_seed_polls_is_reproducible_and_resettable():
    seed(questions=6, seed=7)
    first = snapshot()
    seed(questions=6, seed=7, reset=True)
    assert snapshot() == first
    seed(questions=6, seed=8, reset=True)
    assert snapshot() != first
    seed(questions=2)  # without --reset: adds, with fresh usernames
    assert Question.objects.count() == 8
    assert User.objects.values("username").distinct().count() == User.objects.count()


def test_seed_polls_clears_the_cache_it_cannot_keep_current(api):
    seed(questions=2)
    question = Question.objects.first()
    api.get(f"/api/questions/{question.pk}/")
    assert cached_bytes("question", question.pk) is not None
    seed(questions=2, reset=True)
    assert cached_bytes("question", question.pk) is None


def test_the_demo_prepares_a_fresh_checkout(tmp_path: Path):
    var_dir = tmp_path / "var"  # does not exist yet, as on a fresh checkout
    env = {**os.environ, "DRF_INSTCACHE_VAR_DIR": str(var_dir)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    command = [sys.executable, "-m", "example.demo", "--no-serve", "--questions", "20"]

    first = subprocess.run(
        command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert first.returncode == 0, first.stderr
    assert "seeded 10 users, 20 questions, 60 choices" in first.stdout
    assert "http://127.0.0.1:8000/api/questions/" in first.stdout
    assert "http://127.0.0.1:8000/api/plain/questions/" in first.stdout
    assert (var_dir / "demo.sqlite3").is_file()

    again = subprocess.run(
        [*command, "--port", "8123"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr
    assert "seeded" not in again.stdout  # the data is already there
    assert "http://127.0.0.1:8123/api/users/" in again.stdout
