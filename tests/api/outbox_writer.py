"""Run as a separate process: change a Question through the ORM, then exit.

``python -m tests.api.outbox_writer BACKEND_URL QUESTION_PK TEXT [lists]`` with
``DJANGO_SETTINGS_MODULE=tests.settings`` and ``PGDATABASE`` naming the test database.
Its cache invalidation fails (the test has paused or killed the server), so what it
could not apply must outlive it in the outbox table; or it succeeds, and other
processes' near caches hear of it from Redis. ``lists`` turns on cached list queries
(their receivers are connected at start-up).
"""

from __future__ import annotations

import sys

import django
from django.conf import settings


def main(url: str, pk: str, text: str, *flags: str) -> None:
    if "lists" in flags:
        settings.DRF_INSTCACHE_CACHE_LIST_QUERIES = True
    django.setup()
    settings.DRF_INSTCACHE_BACKEND = url  # read lazily, at the first cache call
    from example.polls.models import Question

    question = Question.objects.get(pk=int(pk))
    question.question_text = text
    question.save()


if __name__ == "__main__":
    main(*sys.argv[1:])
