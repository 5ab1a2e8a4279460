"""Cached list queries (``DRF_INSTCACHE_CACHE_LIST_QUERIES``): no query on a warm list,
and never a count or a page from before a committed write to a table the query reads.

The tests of :mod:`test_matches_plain` and :mod:`test_invalidation` also run with the
setting on; these ones look at what is specific to it.
"""

from __future__ import annotations

import datetime
import pickle
import zoneinfo

import pytest
from django.db import connection, transaction
from django.db.models import Value
from django.db.models.functions import Now
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from drf_instcache import settings as instcache_settings
from drf_instcache.fastpath import listqueries
from example.polls.models import Choice, Question
from tests.fastpath.conftest import Polls, every_backend, make_polls


@pytest.fixture(autouse=True)
def cached_list_queries(settings) -> None:
    settings.DRF_INSTCACHE_CACHE_LIST_QUERIES = True


def get(api, url: str):
    with CaptureQueriesContext(connection) as captured:
        response = api.get(url)
    assert response.status_code == 200, response.content[:300]
    return response.json(), len(captured.captured_queries)


def same_as_plain(api, fast: str, plain: str) -> int:
    """Compare with plain DRF; return how many queries the fast request made."""
    answer, queries = get(api, fast)
    expected = api.get(plain).json()
    for link in ("next", "previous"):
        if isinstance(expected, dict) and expected.get(link):
            expected[link] = expected[link].replace("/plain/", "/fast/")
    assert answer == expected
    return queries


@every_backend
@pytest.mark.parametrize(
    "fast, plain",
    [
        ("/api/fast/questions/?page=2", "/api/plain/questions/?page=2"),
        ("/api/fast/questions/?page=3", "/api/plain/questions/?page=3"),  # the short last page
        (
            "/t/fast/limit-questions/?limit=7&offset=14",
            "/t/plain/limit-questions/?limit=7&offset=14",
        ),
        ("/t/fast/all-polls/", "/t/plain/all-polls/"),
        (
            "/t/fast/search-questions/?ordering=-pub_date",
            "/t/plain/search-questions/?ordering=-pub_date",
        ),
    ],
)
def test_a_warm_list_asks_the_database_nothing(api, fast: str, plain: str):
    make_polls(questions=205, choices=1, users=2)
    assert same_as_plain(api, fast, plain) > 0
    assert same_as_plain(api, fast, plain) == 0


@every_backend
def test_writes_to_any_table_the_query_reads_are_seen(api, polls: Polls):
    fast = "/t/fast/questions-by-choice-text/?text=answer+1"
    plain = fast.replace("/fast/", "/plain/")
    same_as_plain(api, fast, plain)
    assert same_as_plain(api, fast, plain) == 0
    choice = polls.choices[0]  # "Question 0? answer 0": not found yet
    choice.choice_text = "answer 1 now"
    choice.save()  # polls_choice changed: the query joins it
    assert same_as_plain(api, fast, plain) > 0
    assert same_as_plain(api, fast, plain) == 0
    new = Question.objects.create(question_text="new", pub_date=polls.questions[0].pub_date)
    Choice.objects.create(question=new, choice_text="answer 1 too")
    same_as_plain(api, fast, plain)
    polls.questions[2].delete()
    same_as_plain(api, fast, plain)


def test_search_across_relations_is_never_cached(api, polls: Polls):
    # DRF's SearchFilter wraps to-many searches in EXISTS (a subquery): not cacheable.
    fast = "/t/fast/search-questions/?search=answer"
    plain = fast.replace("/fast/", "/plain/")
    same_as_plain(api, fast, plain)
    assert same_as_plain(api, fast, plain) == 2


def test_per_user_queries_have_their_own_results(api, polls: Polls):
    for user in polls.users:
        api.force_authenticate(user)
        same_as_plain(api, "/t/fast/my-votes/", "/t/plain/my-votes/")
        assert same_as_plain(api, "/t/fast/my-votes/", "/t/plain/my-votes/") == 0
    user = polls.users[0]
    polls.choices[5].voters.add(user)  # the through table changed
    api.force_authenticate(user)
    assert same_as_plain(api, "/t/fast/my-votes/", "/t/plain/my-votes/") > 0


def test_a_rolled_back_write_keeps_the_results(api, polls: Polls):
    same_as_plain(api, "/api/fast/questions/", "/api/plain/questions/")
    with pytest.raises(RuntimeError), transaction.atomic():
        Question.objects.create(question_text="never", pub_date=polls.questions[0].pub_date)
        raise RuntimeError("roll back")
    assert same_as_plain(api, "/api/fast/questions/", "/api/plain/questions/") == 0


def test_a_read_racing_a_write_never_stores_an_old_result_as_current(api, polls: Polls):
    query = Question.objects.order_by("pk").values_list("pk", flat=True)
    backend = instcache_settings.get_backend()
    keys = listqueries.CachedKeys(query, listqueries.describe(query), backend)
    keys.prefetch(count=True)  # generations read before the database is
    Question.objects.create(question_text="meanwhile", pub_date=polls.questions[0].pub_date)
    assert keys.count() == 4  # counted after the write: fine, and stored under old tokens
    keys.flush()
    fresh = listqueries.CachedKeys(query, listqueries.describe(query), backend)
    fresh.prefetch(count=True)
    with CaptureQueriesContext(connection) as captured:
        assert fresh.count() == 4
    assert len(captured.captured_queries) == 1  # the old tokens' result was not served


def test_queries_that_cannot_be_pinned_to_their_tables_are_not_cached():
    questions = Question.objects.values_list("pk", flat=True)
    assert listqueries.describe(questions.order_by("pk")) is not None
    assert listqueries.describe(questions.filter(pk__in=Choice.objects.values("question"))) is None
    assert listqueries.describe(questions.order_by("?")) is None
    assert listqueries.describe(questions.extra(tables=["auth_user"])) is None
    assert listqueries.describe(questions.extra(where=["id IN (SELECT 1)"])) is None
    assert listqueries.describe(questions.filter(pub_date__lte=Now())) is None
    assert listqueries.describe(questions.none()) is None
    joined = listqueries.describe(questions.filter(choices__voters__username="x"))
    assert joined.tables == ("auth_user", "polls_choice", "polls_choice_voters", "polls_question")


def test_views_can_opt_out(api, polls: Polls, settings):
    from example.polls.views import FastQuestionViewSet

    FastQuestionViewSet.cache_list_queries = False
    try:
        same_as_plain(api, "/api/fast/questions/", "/api/plain/questions/")
        assert same_as_plain(api, "/api/fast/questions/", "/api/plain/questions/") == 2
    finally:
        FastQuestionViewSet.cache_list_queries = None


def test_equal_queries_share_a_description_and_different_ones_never_do():
    questions = Question.objects.order_by("pk")
    assert listqueries.describe(questions.filter(pk__gt=1)) == listqueries.describe(
        questions.filter(pk__gt=1)
    )
    described = {
        listqueries.describe(query).digest
        for query in [
            questions,
            questions.filter(pk__gt=1),
            questions.filter(pk__gt=2),
            questions.filter(question_text="1"),
            questions.filter(question_text=1),  # the same SQL parameter: one result
            questions.order_by("-pk"),
            questions.order_by("pub_date"),
            questions.filter(pk__gt=1).using("default")[:5],
        ]
    }
    assert len(described) == 7


def test_the_active_time_zone_is_part_of_a_description():
    # Date lookups put the active time zone in the SQL: one remembered description per zone.
    day = datetime.date(2024, 1, 1)
    on_that_day = Question.objects.filter(pub_date__date=day).order_by("pk")
    with timezone.override(zoneinfo.ZoneInfo("UTC")):
        utc = listqueries.describe(on_that_day)
    with timezone.override(zoneinfo.ZoneInfo("Asia/Tokyo")):
        tokyo = listqueries.describe(on_that_day)
    with timezone.override(zoneinfo.ZoneInfo("UTC")):
        assert listqueries.describe(on_that_day) == utc
    assert utc.digest != tokyo.digest


def test_a_warm_list_costs_one_round_trip(api, counting_backend, django_assert_num_queries):
    make_polls(questions=30, choices=1, users=2)
    api.get("/api/fast/questions/")
    counting_backend.clear()
    with django_assert_num_queries(0):
        api.get("/api/fast/questions/")
    # The generation of polls_question, the count, the page's keys and its 30 entries.
    assert counting_backend == [("get_many", 1 + 2 + 30)]
    # A process that has not seen the page yet reads its keys first, then the entries.
    listqueries._recent.clear()
    counting_backend.clear()
    with django_assert_num_queries(0):
        api.get("/api/fast/questions/")
    assert counting_backend == [("get_many", 1 + 2), ("get_many", 30)]


@every_backend
def test_a_page_read_ahead_after_a_write_is_not_served(api, polls: Polls):
    fast, plain = "/api/fast/questions/", "/api/plain/questions/"
    same_as_plain(api, fast, plain)
    assert same_as_plain(api, fast, plain) == 0
    Question.objects.create(question_text="new", pub_date=polls.questions[0].pub_date)
    assert same_as_plain(api, fast, plain) > 0  # the remembered page is not the page
    assert same_as_plain(api, fast, plain) == 0
    polls.questions[1].delete()
    assert same_as_plain(api, fast, plain) > 0
    question = polls.questions[2]
    question.question_text = "edited"
    question.save()
    assert same_as_plain(api, fast, plain) > 0
    answer, queries = get(api, fast)
    assert queries == 0
    assert [row["question_text"] for row in answer["results"]].count("edited") == 1


class _UnpicklableValue(Value):
    """A query value holding a lambda: the query cannot be pickled."""

    def __init__(self, value):
        super().__init__(value)
        self.callback = lambda: value


def test_a_query_that_cannot_be_pickled_is_described_by_compiling_it():
    query = Question.objects.filter(pk=_UnpicklableValue(3)).order_by("pk")
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        pickle.dumps(query.query)
    described = listqueries.describe(query)
    assert described is not None and described.tables == ("polls_question",)
    assert listqueries.describe(query) == described
    other = Question.objects.filter(pk=_UnpicklableValue(4)).order_by("pk")
    assert listqueries.describe(other).digest != described.digest
