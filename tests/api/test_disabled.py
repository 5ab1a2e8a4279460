"""``USE_DRF_INSTANCE_CACHE = False``: the cached viewsets are plain DRF again."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from example.polls.models import Question
from tests.api.conftest import Polls, cached_bytes
from tests.api.urls import SEEN_BY_PERMISSION

pytestmark = pytest.mark.urls("tests.api.urls")


@pytest.fixture
def disabled(settings) -> None:
    settings.USE_DRF_INSTANCE_CACHE = False


def all_entries(polls: Polls) -> list[bytes | None]:
    return [
        cached_bytes(model, row.pk)
        for model, rows in (("question", polls.questions), ("choice", polls.choices))
        for row in rows
    ] + [cached_bytes("user", user.pk) for user in polls.users]


def test_reads_and_writes_never_touch_the_cache(api, polls: Polls, disabled):
    for resource in ("questions", "choices", "users"):
        cached = api.get(f"/api/{resource}/").json()
        assert cached == api.get(f"/api/plain/{resource}/").json()
        first = cached["results"][0]["id"]
        assert api.get(f"/api/{resource}/{first}/").json() == cached["results"][0]
    question = polls.questions[0]
    assert api.patch(f"/api/questions/{question.pk}/", {"question_text": "Off?"}).status_code == 200
    assert api.get(f"/api/questions/{question.pk}/").json()["question_text"] == "Off?"
    Question.objects.create(question_text="Also off?", pub_date=question.pub_date)
    assert not any(all_entries(polls))


def test_reads_come_from_the_database(api, polls: Polls, disabled, django_assert_num_queries):
    question = polls.questions[0]
    api.get(f"/api/questions/{question.pk}/")
    with django_assert_num_queries(2):  # the question, then its choices: plain DRF
        api.get(f"/api/questions/{question.pk}/")


def test_permissions_see_real_instances(api, polls: Polls, disabled):
    me = polls.users[0]
    api.force_authenticate(me)
    SEEN_BY_PERMISSION.clear()
    assert api.get(f"/t/self-only-users/{me.pk}/").status_code == 200
    assert [type(obj) for obj in SEEN_BY_PERMISSION] == [User]


def test_switching_the_cache_back_on(api, polls: Polls, settings):
    settings.USE_DRF_INSTANCE_CACHE = False
    question = polls.questions[0]
    api.get(f"/api/questions/{question.pk}/")
    assert cached_bytes("question", question.pk) is None
    settings.USE_DRF_INSTANCE_CACHE = True
    api.get(f"/api/questions/{question.pk}/")
    assert cached_bytes("question", question.pk) is not None
