"""Issue 17: the django-debug-toolbar panel, rendered by a real toolbar for real requests.

The toolbar is installed for these tests only (INSTALLED_APPS, MIDDLEWARE and URLs);
each request is instrumented by its middleware, and the panel is then rendered through
the toolbar's own ``render_panel`` view, from what its store kept.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from drf_instcache.backends.observed import remove_observer
from drf_instcache.core import shared_stats, transactions
from drf_instcache.ops import debug_panel
from tests.ops.conftest import Seeded

PANEL = "drf_instcache.ops.debug_panel.InstcachePanel"


def show_toolbar(request) -> bool:
    return True


@pytest.fixture
def toolbar(settings):
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "debug_toolbar"]
    settings.MIDDLEWARE = ["debug_toolbar.middleware.DebugToolbarMiddleware", *settings.MIDDLEWARE]
    settings.ROOT_URLCONF = "tests.ops.toolbar_urls"
    settings.DEBUG_TOOLBAR_PANELS = [PANEL]
    settings.DEBUG_TOOLBAR_CONFIG = {
        "SHOW_TOOLBAR_CALLBACK": "tests.ops.test_debug_panel.show_toolbar",
        "IS_RUNNING_TESTS": False,
    }
    yield
    remove_observer(debug_panel._record_call)
    transactions.remove_schedule_observer(debug_panel._record_scheduled)


def rendered_panel(api: APIClient) -> tuple[str, dict]:
    """The panel's HTML and stats for the last request the toolbar instrumented."""
    from debug_toolbar.store import get_store  # its models need the app installed first

    store = get_store()
    request_id = list(store.request_ids())[-1]
    stats = store.panel(request_id, "InstcachePanel")
    answer = api.get(
        "/__debug__/render_panel/", {"request_id": request_id, "panel_id": "InstcachePanel"}
    )
    assert answer.status_code == 200, answer.content[:300]
    return answer.json()["content"], stats


def instance_reads(stats: dict, count: int) -> list[dict]:
    """The reads of the page's instance entries (one key per question)."""
    return [
        call
        for call in stats["calls"]
        if call["operation"] in ("get_many", "get_many_claiming") and call["key_count"] == count
    ]


@pytest.mark.parametrize("ops_backend", ["redis"], indirect=True)
def test_the_panel_lists_each_call_and_the_scheduled_invalidations(
    toolbar, backend, seeded: Seeded
):
    api = APIClient()
    assert api.get("/api/questions/").status_code == 200  # cold
    html, stats = rendered_panel(api)
    (read,) = instance_reads(stats, seeded.questions)
    assert read["hits"] == 0
    # A cold read puts the leases on the misses in the same call (one round trip).
    assert read["operation"] == "get_many_claiming"
    operations = [call["operation"] for call in stats["calls"]]
    # No separate lease call for the entries: the only add_many a cold request may make
    # is the shared statistics' first listing of this process (their index, written by
    # compare-and-set).
    added = [call["keys"] for call in stats["calls"] if call["operation"] == "add_many"]
    assert all(keys == [shared_stats.INDEX_KEY] for keys in added), added
    assert "fill_many_quietly" in operations  # the fill over them, not waited for
    assert stats["totals"]["misses"] >= seeded.questions
    assert "<table>" in html and "get_many" in html and read["keys"][0] in html
    assert "No invalidation scheduled" in html

    assert api.get("/api/questions/").status_code == 200  # warm
    html, stats = rendered_panel(api)
    (read,) = instance_reads(stats, seeded.questions)
    assert read["hits"] == seeded.questions
    assert read["backend"] == "redis" and read["ms"] > 0 and read["error"] is None
    assert stats["totals"]["hits"] >= seeded.questions
    assert not {"fill_many", "fill_many_quietly"} & {call["operation"] for call in stats["calls"]}
    assert f"{stats['totals']['hits']} hit(s)" in html

    question = api.get("/api/questions/").json()["results"][0]
    changed = api.patch(
        f"/api/questions/{question['id']}/", {"question_text": "Panel?"}, format="json"
    )
    assert changed.status_code == 200
    html, stats = rendered_panel(api)
    assert stats["invalidations"], stats
    assert any(f"question {question['id']}" in each["what"] for each in stats["invalidations"])
    assert "Invalidations scheduled" in html
