"""A separate process that counts cache hits and publishes them to a shared backend.

Run by the statistics tests as ``python -m tests.ops.publisher URL HITS [MORE]``: it
counts ``HITS`` question hits and publishes them, prints ``published``, and with
``MORE`` waits for a line on stdin, counts ``MORE`` hits and publishes again (so a test
can reset the statistics in between).
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from drf_instcache import counters
    from drf_instcache.settings import build_backend

    backend = build_backend(argv[0])
    rounds = [int(count) for count in argv[1:]]
    for number, hits in enumerate(rounds):
        if number:
            sys.stdin.readline()
        counters.incr_per_model("hits", ["question"] * hits)
        counters.incr_per_model("misses", ["choice"])
        if not counters.flush(backend):
            raise SystemExit("nothing published")
        print("published", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
