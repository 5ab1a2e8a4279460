"""``python -m example.demo`` (``make demo``): the sample poll API, ready to try.

Creates ``var/`` on a fresh checkout, migrates the SQLite database, seeds a few hundred
rows when the database is empty, prints the URLs to try and serves them with Django's
development server on 127.0.0.1. Everything is embedded (SQLite, the disk cache): no
server to install. ``--no-serve`` stops before serving, as a smoke test.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

DEFAULT_PORT = 8000
DEFAULT_QUESTIONS = 100

ENDPOINTS = (
    ("questions, cached", "api/questions/"),
    ("one question, cached", "api/questions/1/"),
    ("choices, cached", "api/choices/?page=2"),
    ("users, cached", "api/users/"),
    ("questions, plain DRF", "api/plain/questions/"),
    ("users, plain DRF", "api/plain/users/"),
)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m example.demo", description=__doc__)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port on 127.0.0.1")
    parser.add_argument(
        "--questions",
        type=int,
        default=DEFAULT_QUESTIONS,
        help="questions to seed when the database is empty",
    )
    parser.add_argument(
        "--no-serve", action="store_true", help="prepare the database and exit (smoke test)"
    )
    parser.add_argument(
        "--noreload", action="store_true", help="do not restart the server when code changes"
    )
    return parser.parse_args(argv)


def prepare(questions: int) -> None:
    """Migrate and, when there is no poll yet, seed the database."""
    from django.core.management import call_command

    from example.polls.models import Question

    call_command("migrate", interactive=False, verbosity=0)
    if not Question.objects.exists():
        call_command("seed_polls", questions=questions)


def urls_to_try(port: int) -> list[str]:
    width = max(len(label) for label, _ in ENDPOINTS)
    return [f"  {label:<{width}}  http://127.0.0.1:{port}/{path}" for label, path in ENDPOINTS]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example.settings")

    import django
    from django.conf import settings

    Path(settings.VAR_DIR).mkdir(parents=True, exist_ok=True)
    django.setup()
    # The autoreloader runs this module again in a child process: prepare only once.
    if os.environ.get("RUN_MAIN") != "true":
        prepare(args.questions)
        print(f"\ndatabase {settings.DATABASES['default']['NAME']}")
        print(f"cache    {settings.DRF_INSTCACHE_BACKEND}\n")
        print("\n".join(urls_to_try(args.port)))
        print()
    if args.no_serve:
        return 0

    from django.core.management import call_command

    call_command("runserver", f"127.0.0.1:{args.port}", use_reloader=not args.noreload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
