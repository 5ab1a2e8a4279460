"""``instcache clear``: removes this library's entries and nothing else."""

from __future__ import annotations

from django.contrib.auth.models import User

from drf_instcache import counters, ops
from drf_instcache.discovery import Target
from drf_instcache.settings import build_backend
from example.polls.cache import PollCache
from example.polls.models import Choice, Question
from tests.ops.conftest import Seeded, cached_pks, each_backend, instcache


def pks(model) -> list:
    return list(model.objects.values_list("pk", flat=True))


@each_backend
def test_clear_without_models_empties_the_namespace_only(backend, seeded: Seeded, namespace_url):
    instcache("warm")
    neighbour = build_backend(namespace_url.replace("?prefix=ops", "?prefix=other"))
    neighbour.set_many({"someone-else": b"keep me"})
    try:
        output = instcache("clear").stdout

        assert "cleared every drf-instcache entry" in output
        assert cached_pks(backend, "question", pks(Question)) == set()
        assert cached_pks(backend, "choice", pks(Choice)) == set()
        assert cached_pks(backend, "user", pks(User)) == set()
        assert neighbour.get_many(["someone-else"]) == {"someone-else": b"keep me"}
    finally:
        neighbour.clear()
        neighbour.close()


@each_backend
def test_clear_named_model_deletes_its_entries_and_keeps_the_others(backend, seeded: Seeded):
    instcache("warm")

    output = instcache("clear", "question").stdout

    assert cached_pks(backend, "question", pks(Question)) == set()
    assert cached_pks(backend, "choice", pks(Choice)) == set(pks(Choice))
    assert cached_pks(backend, "user", pks(User)) == set(pks(User))
    assert f"cleared polls.question (PollCache): {seeded.questions} keys deleted" in output


def test_clear_keeps_the_shared_statistics(backend, seeded: Seeded):
    counters.incr_per_model("hits", ["question"] * 7)
    counters.flush(backend)
    before = counters.shared(backend, include_self=False)

    instcache("clear")

    after = counters.shared(backend, include_self=False)
    assert after.processes == before.processes == 1
    assert after.models["question"]["hits"] == before.models["question"]["hits"] >= 7


class TwoVersionCache(PollCache):
    """PollCache with a second version of the question entry, as an API v2 might add."""

    versions = ["default", "v2"]

    def question_v2_serializer(self, obj):
        return {"id": obj.id, "text": obj.question_text} if obj else None

    question_v2_loader = PollCache.question_default_loader
    question_v2_invalidator = PollCache.question_default_invalidator


def test_clearing_a_model_deletes_its_entries_in_every_version(backend, seeded: Seeded):
    target = Target(TwoVersionCache, Question, ("default",))
    questions = pks(Question)
    ops.warm(target, versions=["default", "v2"])
    cache = TwoVersionCache()
    keys = [cache.key_for(v, "question", pk) for v in cache.versions for pk in questions]
    assert len(backend.get_many(keys)) == 2 * len(questions)

    deleted = ops.clear(target, batch_size=5)

    assert deleted == 2 * len(questions)
    assert backend.get_many(keys) == {}
