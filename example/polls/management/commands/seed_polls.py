"""``seed_polls``: fill the poll tables with reproducible sample data, fast.

Used by ``make demo`` (a few hundred rows) and by the benchmarks (``--questions 10000``).
Rows are written with ``bulk_create``, which sends no model signals, so the cache
cannot learn about them: the configured cache namespace is cleared afterwards so no
entry from an earlier database survives.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from drf_instcache import settings as instcache_settings
from drf_instcache.exceptions import BackendUnavailable
from example.polls.models import Choice, Question

USERNAME_PREFIX = "voter"
"""Seeded users are ``voter00001``...; ``--reset`` deletes only users named like this."""

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
"""Publication dates count back from a fixed instant, so the data is the same every run."""

WORDS = (
    "best",
    "favourite",
    "first",
    "fastest",
    "oldest",
    "newest",
    "tallest",
    "quietest",
    "brightest",
    "strangest",
    "editor",
    "language",
    "city",
    "river",
    "mountain",
    "planet",
    "song",
    "book",
    "film",
    "game",
    "colour",
    "animal",
)


class Command(BaseCommand):
    help = "Create sample users, questions, choices and votes (reproducible with --seed)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--questions", type=int, default=100, help="questions to add")
        parser.add_argument("--choices", type=int, default=3, help="choices per question")
        parser.add_argument(
            "--users", type=int, default=None, help="users to add (default: questions / 2, >= 10)"
        )
        parser.add_argument(
            "--votes", type=int, default=3, help="votes cast by each user (at most)"
        )
        parser.add_argument("--seed", type=int, default=0, help="random seed")
        parser.add_argument(
            "--reset",
            action="store_true",
            help="delete every question, choice and seeded user first",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        questions, per_question = options["questions"], options["choices"]
        users = options["users"] if options["users"] is not None else max(10, questions // 2)
        if min(questions, per_question, users, options["votes"]) < 0:
            raise CommandError("counts must not be negative")
        rng = random.Random(options["seed"])
        with transaction.atomic():
            if options["reset"]:
                self.reset()
            created = self.seed(rng, questions, per_question, users, options["votes"])
        self.clear_cache()
        self.stdout.write(
            "seeded {users} users, {questions} questions, {choices} choices, {votes} votes".format(
                **created
            )
        )

    def reset(self) -> None:
        Choice.objects.all().delete()
        Question.objects.all().delete()
        get_user_model().objects.filter(username__startswith=USERNAME_PREFIX).delete()

    def seed(
        self, rng: random.Random, questions: int, per_question: int, users: int, votes: int
    ) -> dict[str, int]:
        user_model = get_user_model()
        first = user_model.objects.filter(username__startswith=USERNAME_PREFIX).count() + 1
        new_users = user_model.objects.bulk_create(
            user_model(
                username=f"{USERNAME_PREFIX}{number:05d}",
                date_joined=EPOCH - timedelta(days=rng.randint(0, 1000), seconds=number),
            )
            for number in range(first, first + users)
        )
        new_questions = Question.objects.bulk_create(
            Question(
                question_text=f"Which {rng.choice(WORDS)} {rng.choice(WORDS)} is #{number}?",
                pub_date=EPOCH - timedelta(minutes=rng.randint(0, 500_000)),
            )
            for number in range(questions)
        )
        new_choices = Choice.objects.bulk_create(
            Choice(question=question, choice_text=f"{rng.choice(WORDS)} {index + 1}")
            for question in new_questions
            for index in range(per_question)
        )
        through = Choice.voters.through
        ballots = []
        if new_choices:
            for user in new_users:
                for choice in rng.sample(new_choices, min(votes, len(new_choices))):
                    ballots.append(through(choice_id=choice.pk, user_id=user.pk))
        through.objects.bulk_create(ballots)
        return {
            "users": len(new_users),
            "questions": len(new_questions),
            "choices": len(new_choices),
            "votes": len(ballots),
        }

    def clear_cache(self) -> None:
        if not instcache_settings.enabled():
            return
        try:
            instcache_settings.get_backend().clear()
        except BackendUnavailable as error:
            self.stderr.write(f"could not clear the cache ({error}); entries may be stale")
