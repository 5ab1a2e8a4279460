"""Workload: what a write costs with the library connected, against the same write without.

The example polls app, with growing fan-out N (the run's sizes above 1): one Question
with N Choices, and one User who voted for all N of them. Each scenario is timed
interleaved, repeat by repeat, *connected* (the receivers the app connects at start-up:
instance cascades, rendered-entry and list-query invalidation, run on commit) and *not
connected* (every receiver of ``drf_instcache`` taken off Django's model signals), and
its queries are counted once each way:

* ``save``: ``question.save()`` of the Question whose N Choices point at it;
* ``fk cascade``: ``question.delete()``, deleting its N Choices (and their votes) with it;
* ``m2m add`` / ``m2m remove`` / ``m2m clear``: ``user.votes.add/remove(*N choices)``,
  ``user.votes.clear()``.

Every setup (restoring the rows a scenario changed) runs untimed and disconnected. The
workload measures whatever write path is installed; the rows it creates are deleted at
the end, so the seeded database keeps its size.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.progress import ProgressSink
from benchmarks.query_count import queries_of
from benchmarks.servers import Target, each_target
from benchmarks.timing import Case, Plan, measure, ratio

SCENARIOS = ("save", "fk cascade", "m2m add", "m2m remove", "m2m clear")
KEY_PREFIX = "bench-writes"
MARK = "bench-writes"
"""Text of the rows this workload creates (and deletes afterwards)."""


def fan_outs(sizes: Sequence[int]) -> list[int]:
    """The fan-outs measured: the run's sizes above 1 (all of them if none is)."""
    above = [size for size in sizes if size > 1]
    return sorted(set(above or sizes))


def steps(targets: Sequence[Target], sizes: Sequence[int], plan: Plan) -> int:
    return len(targets) * len(fan_outs(sizes)) * len(SCENARIOS) * plan.repeats


def _signals() -> list[Any]:
    from django.db.models import signals

    return [
        signals.pre_save,
        signals.post_save,
        signals.pre_delete,
        signals.post_delete,
        signals.m2m_changed,
    ]


def _ours(entry: tuple[Any, ...]) -> bool:
    receiver = entry[1]
    if isinstance(receiver, weakref.ReferenceType):
        receiver = receiver()
    return getattr(receiver, "__module__", "").startswith("drf_instcache")


@contextlib.contextmanager
def disconnected() -> Iterator[None]:
    """Django's model signals without drf-instcache's receivers, restored on exit."""
    saved = []
    for signal in _signals():
        with signal.lock:
            saved.append((signal, signal.receivers))
            signal.receivers = [entry for entry in signal.receivers if not _ours(entry)]
            signal.sender_receivers_cache.clear()
    try:
        yield
    finally:
        for signal, receivers in saved:
            with signal.lock:
                signal.receivers = receivers
                signal.sender_receivers_cache.clear()


@dataclass
class Fixture:
    """The rows of one fan-out: a Question with ``n`` Choices, a User voting for all."""

    n: int
    question: Any = None
    user: Any = None
    choice_pks: list[Any] | None = None

    def create(self) -> None:
        from django.contrib.auth import get_user_model
        from django.utils import timezone

        from example.polls.models import Question

        with disconnected():
            self.question = Question.objects.create(question_text=MARK, pub_date=timezone.now())
            self.user = get_user_model().objects.create(username=f"{MARK}-{self.n}")
            self._choices()

    def _choices(self) -> None:
        from example.polls.models import Choice

        choices = Choice.objects.bulk_create(
            Choice(question=self.question, choice_text=MARK) for _ in range(self.n)
        )
        self.choice_pks = [choice.pk for choice in choices]
        self.voted()

    def voted(self) -> None:
        """Every Choice voted for by the User (no signal: a plain insert)."""
        from example.polls.models import Choice

        through = Choice.voters.through
        through.objects.filter(user_id=self.user.pk).delete()
        through.objects.bulk_create(
            through(choice_id=pk, user_id=self.user.pk) for pk in self.choice_pks or []
        )

    def unvoted(self) -> None:
        from example.polls.models import Choice

        Choice.voters.through.objects.filter(user_id=self.user.pk).delete()

    def recreated(self) -> None:
        """The Question (and its Choices and votes) back after a delete."""
        from django.utils import timezone

        from example.polls.models import Question

        with disconnected():
            if not Question.objects.filter(pk=self.question.pk).exists():
                self.question = Question.objects.create(
                    pk=self.question.pk, question_text=MARK, pub_date=timezone.now()
                )
                self._choices()

    def delete(self) -> None:
        with disconnected():
            self.unvoted()
            self.question.delete()
            self.user.delete()

    def scenario(self, name: str) -> tuple[Callable[[], object], Callable[[], object]]:
        """``(call, setup)`` of one scenario; setups run disconnected."""
        from example.polls.models import Choice, Question

        def quiet(step: Callable[[], object]) -> Callable[[], object]:
            def run() -> None:
                with disconnected():
                    step()

            return run

        def save() -> None:
            question = Question.objects.get(pk=self.question.pk)
            question.question_text = MARK
            question.save()

        def choices() -> list[Any]:
            return list(Choice.objects.filter(pk__in=self.choice_pks))

        def delete() -> None:
            Question.objects.get(pk=self.question.pk).delete()

        user = self.user
        table = {
            "save": (save, lambda: None),
            "fk cascade": (delete, self.recreated),
            "m2m add": (lambda: user.votes.add(*choices()), quiet(self.unvoted)),
            "m2m remove": (lambda: user.votes.remove(*choices()), quiet(self.voted)),
            "m2m clear": (lambda: user.votes.clear(), quiet(self.voted)),
        }
        return table[name]


def _queries(call: Callable[[], object], setup: Callable[[], object]) -> int:
    setup()
    return queries_of(call)[0]


def run_fan_out(n: int, plan: Plan, progress: ProgressSink) -> list[dict[str, Any]]:
    """Every scenario at fan-out ``n``: connected against not connected."""
    fixture = Fixture(n)
    fixture.create()
    rows: list[dict[str, Any]] = []
    try:
        for name in SCENARIOS:
            progress.note(f"writes: {name} N={n}")
            call, setup = fixture.scenario(name)

            def unconnected(call: Callable[[], object] = call) -> None:
                with disconnected():
                    call()

            queries = {
                "connected": _queries(call, setup),
                "not_connected": _queries(unconnected, setup),
            }
            timings = measure(
                {
                    "connected": Case(call, setup=setup),
                    "not_connected": Case(unconnected, setup=setup),
                },
                plan,
                tick=progress.step,
            )
            rows.append(
                {
                    "scenario": name,
                    "n": n,
                    "queries": queries,
                    "timings": {side: t.to_json() for side, t in timings.items()},
                    "connected/not_connected": ratio(
                        timings["connected"], timings["not_connected"]
                    ).to_json(),
                }
            )
            setup()
    finally:
        fixture.recreated()
        fixture.delete()
    return rows


def run(
    targets: Sequence[Target],
    sizes: Sequence[int],
    plan: Plan,
    progress: ProgressSink,
    on_error: Callable[[Target, BaseException], None] | None = None,
) -> list[dict[str, Any]]:
    """Every backend and fan-out; a failing backend is reported and the others still run.

    The connected receivers write to the process backend, made each target in turn.
    """
    from benchmarks.near_layer import serving

    def measure(target: Target) -> list[dict[str, Any]]:
        with serving(target.backend_setting(KEY_PREFIX)):
            return [
                {"backend": target.name, **row}
                for n in fan_outs(sizes)
                for row in run_fan_out(n, plan, progress)
            ]

    return each_target(targets, measure, on_error)
