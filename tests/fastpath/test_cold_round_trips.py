"""A cold read-through waits for one round trip on Redis: the read (which leases the
misses); the fill over that one lease is sent without waiting for its answer. The
database sees the same queries as before.

Both levels are checked (rendered entries on ``/api/fast/``, instances on ``/api/``),
on a real redis-server, through the configured backend's observers (what a debug panel
or a trace sees). The race and stampede guarantees of the leases are the reliability
tests' (``tests/reliability``); here only the number of calls is.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from drf_instcache.backends.observed import BackendCall, add_observer, remove_observer
from drf_instcache.core.namespaces import INSTANCE_NAMESPACE, RENDERED_NAMESPACE
from tests.api.conftest import make_polls

pytestmark = pytest.mark.parametrize("instcache_backend", ["redis"], indirect=True)

ENTRY_CALLS = (
    "get_many",
    "get_many_claiming",
    "add_many",
    "compare_and_set_many",
    "fill_many",
    "fill_many_quietly",
)
ENTRIES = (f"{INSTANCE_NAMESPACE}:", f"{RENDERED_NAMESPACE}:")
"""Entry keys (not the shared statistics, variant indexes or list queries)."""


@pytest.fixture
def calls(cache_namespace: str):
    """The entry reads and writes the request makes: ``(operation, keys)``."""
    seen: list[BackendCall] = []
    add_observer(seen.append)
    yield lambda: [
        (call.operation, len(call.keys))
        for call in seen
        if call.operation in ENTRY_CALLS and call.keys[0].startswith(ENTRIES)
    ]
    remove_observer(seen.append)


@pytest.mark.parametrize("root", ["/api/fast/", "/api/"], ids=["rendered", "instances"])
def test_a_cold_page_reads_and_leases_in_one_call(api, calls, settings, root):
    settings.DRF_INSTCACHE_CACHE_LIST_QUERIES = False
    make_polls(questions=30, choices=1, users=3)
    with CaptureQueriesContext(connection) as cold:
        assert api.get(f"{root}questions/").status_code == 200
    cold_queries = len(cold)  # read now: the next request empties the query log
    if connection.vendor == "postgresql":  # the misses' rows: one array of pks, not N literals
        assert any("= ANY(" in query["sql"] for query in cold.captured_queries)
    assert calls() == [("get_many_claiming", 30), ("fill_many_quietly", 30)]
    with CaptureQueriesContext(connection) as warm:
        assert api.get(f"{root}questions/").status_code == 200
    warm_queries = len(warm)
    # The last read of the page was cold, so this one leases too (here it finds all).
    assert calls()[2:] == [("get_many_claiming", 30)]
    assert api.get(f"{root}questions/").status_code == 200
    assert calls()[3:] == [("get_many", 30)]  # once it was warm, a plain read
    # The database: count, keys, rows, related rows when cold; count and keys when warm.
    assert (cold_queries, warm_queries) == (4, 2)


@pytest.mark.parametrize("root", ["/api/fast/", "/api/"], ids=["rendered", "instances"])
def test_a_cold_retrieve_reads_and_leases_in_one_call(api, calls, root):
    polls = make_polls(questions=2, choices=1, users=1)
    pk = polls.questions[0].pk
    assert api.get(f"{root}questions/{pk}/").status_code == 200
    assert calls() == [("get_many_claiming", 1), ("fill_many_quietly", 1)]
    assert api.get(f"{root}questions/{pk}/").json()["id"] == pk
    assert calls()[2:] == [("get_many_claiming", 1)]
