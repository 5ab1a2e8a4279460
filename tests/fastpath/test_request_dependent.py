"""Output that depends on the request is cached per variant, or refused, never mixed up.

* Hyperlinks carry the scheme and host: each gets its own entries (see also the
  invalidation tests), registered in a variant index whose loss is harmless.
* A field reading ``request.user`` is refused at start-up and at run time unless the
  view declares ``rendered_context_key``; with one, every user gets their own entries.
"""

from __future__ import annotations

import logging

from django.core import checks
from django.urls import include, path
from rest_framework import serializers, viewsets
from rest_framework.routers import SimpleRouter

from drf_instcache import rendered
from drf_instcache import settings as instcache_settings
from drf_instcache.fastpath import variants
from drf_instcache.mixins import CachedViewMixin
from drf_instcache.rendered_checks import check_view
from example.polls.models import Choice, Question
from example.polls.views import FastPollViewSet
from tests.fastpath.conftest import Polls, every_backend
from tests.fastpath.urls import MineSerializer


# -- views that must be refused -----------------------------------------------------------
class UnkeyedMineChoices(CachedViewMixin, viewsets.ReadOnlyModelViewSet):
    """Reads request.user in a field, declares no context key: wrong for all but one user."""

    queryset = Choice.objects.order_by("pk")
    serializer_class = MineSerializer
    cache_rendered = True


class GreetingSerializer(serializers.ModelSerializer):
    greeting = serializers.SerializerMethodField()

    class Meta:
        model = Question
        fields = ("id", "greeting")

    def get_greeting(self, question: Question) -> str:
        return f"{question.question_text} (asked {question.choices.count()} ways)"


class UndeclaredGreetings(CachedViewMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Question.objects.order_by("pk")
    serializer_class = GreetingSerializer
    cache_rendered = True


router = SimpleRouter()
router.register("unkeyed", UnkeyedMineChoices, basename="unkeyed")
router.register("greetings", UndeclaredGreetings, basename="greetings")
urlpatterns = [path("bad/", include(router.urls))]
"""A URL conf holding the refused views, for the system check tests."""


# -- context keys -------------------------------------------------------------------------
@every_backend
def test_each_user_gets_their_own_entries(api, polls: Polls):
    for _ in range(2):  # cold, then warm
        for user in polls.users:
            api.force_authenticate(user)
            plain = api.get("/t/plain/mine-choices/").json()
            assert api.get("/t/fast/mine-choices/").json() == plain
            mine = {row["id"] for row in plain["results"] if row["mine"]}
            assert mine == set(user.votes.values_list("pk", flat=True))


@every_backend
def test_a_vote_reaches_every_users_variant(api, polls: Polls):
    voter, other = polls.users[0], polls.users[1]
    choice = polls.choices[5]
    for user in (voter, other):
        api.force_authenticate(user)
        api.get("/t/fast/mine-choices/")
    choice.voters.add(voter)  # the declared dependency: mine -> voters
    for user in (voter, other):
        api.force_authenticate(user)
        fast = api.get(f"/t/fast/mine-choices/{choice.pk}/").json()
        assert fast == api.get(f"/t/plain/mine-choices/{choice.pk}/").json()
        assert fast["mine"] is (user == voter)


def test_a_view_reading_the_request_without_a_context_key_is_served_by_plain_drf(
    api, polls: Polls, settings, caplog
):
    messages = check_view(UnkeyedMineChoices, connected=True)
    assert [message.id for message in messages] == ["drf_instcache.E021"]
    assert "MineSerializer.mine" in messages[0].msg
    assert "rendered_context_key" in messages[0].hint

    settings.ROOT_URLCONF = __name__
    settings.DRF_INSTCACHE_DEBUG_HEADERS = True
    choice = polls.choices[0]
    choice.voters.add(polls.users[0])
    for user in (polls.users[0], polls.users[1]):  # each sees their own "mine", as in DRF
        api.force_authenticate(user)
        with caplog.at_level(logging.WARNING, logger="drf_instcache.drf.fastviews"):
            response = api.get(f"/bad/unkeyed/{choice.pk}/")
        assert response.status_code == 200
        assert response.json()["mine"] is (user == polls.users[0])
        assert "hits=0 misses=0" in response["X-Instcache"]  # plain DRF served it
    warned = [r.getMessage() for r in caplog.records if "UnkeyedMineChoices" in r.getMessage()]
    assert len(warned) == 1 and "MineSerializer.mine" in warned[0]


def test_system_checks_report_the_fast_views_of_the_url_conf(settings):
    settings.ROOT_URLCONF = __name__
    found = {(m.id, m.obj) for m in checks.run_checks() if m.id.startswith("drf_instcache.")}
    unkeyed = f"{__name__}.UnkeyedMineChoices"
    greetings = f"{__name__}.UndeclaredGreetings"
    assert ("drf_instcache.E021", unkeyed) in found
    assert ("drf_instcache.W020", greetings) in found  # get_greeting reads choices
    assert ("drf_instcache.W021", greetings) in found  # not connected at start-up


def test_the_example_project_passes_its_checks(settings):
    settings.ROOT_URLCONF = "example.urls"
    messages = [m for m in checks.run_checks() if m.id.startswith("drf_instcache.")]
    assert messages == []


def test_declared_dependencies_silence_the_warning_and_are_followed():
    declared = type(
        "DeclaredGreetings",
        (UndeclaredGreetings,),
        {"rendered_dependencies": {"greeting": ["choices"]}},
    )
    assert check_view(declared, connected=True) == []
    plan = rendered.plan_for_view(declared)
    assert [(d.lookup, d.embeds) for d in plan.analysis.dependencies] == [("choices", True)]


# -- host variants ------------------------------------------------------------------------
def test_losing_the_variant_index_never_serves_old_entries(api, polls: Polls):
    question = polls.questions[0]
    url = f"/api/fast/polls/{question.pk}/"
    assert api.get(url).json()["question_text"] == question.question_text
    plan = rendered.plan_for_view(FastPollViewSet)
    backend = instcache_settings.get_backend()
    backend.delete_many([plan.variants.key])
    # A write no signal reports: only a refill can show it.
    Question._base_manager.filter(pk=question.pk).update(question_text="Changed quietly")
    assert api.get(url).json()["question_text"] == "Changed quietly"
    assert api.get(url).json() == api.get(f"/api/plain/polls/{question.pk}/").json()


def test_too_many_variants_are_served_uncached(api, polls: Polls, monkeypatch):
    monkeypatch.setattr(variants, "MAX_VARIANTS", 2)
    question = polls.questions[0]
    url = f"/api/fast/polls/{question.pk}/"
    for host in ("localhost", "127.0.0.1", "testserver"):
        fast = api.get(url, HTTP_HOST=host).json()
        assert fast == api.get(f"/api/plain/polls/{question.pk}/", HTTP_HOST=host).json()
        assert fast["url"].startswith(f"http://{host}/")
    plan = rendered.plan_for_view(FastPollViewSet)
    backend = instcache_settings.get_backend()
    index = variants.decode_index(backend.get_many([plan.variants.key])[plan.variants.key])
    assert len(index) == 2


def test_a_context_key_is_part_of_the_variant(polls: Polls):
    from tests.fastpath.urls import FAST_VIEWSETS

    plan = rendered.plan_for_view(FAST_VIEWSETS["mine-choices"])
    assert plan.keyed and plan.varies and plan.problems() == []
    unkeyed = rendered.plan_for_view(UnkeyedMineChoices)
    assert unkeyed is not plan and unkeyed.problems()
