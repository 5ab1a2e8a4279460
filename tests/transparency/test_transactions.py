"""Transactions: what a transaction reads or writes never leaks, and it sees its own writes.

The tests are transactional (real commits and rollbacks). Requests go through the test
client, which runs the view in this thread on this connection, so a request made inside
``transaction.atomic()`` reads inside that transaction, as a view called from a
transaction would. ``ATOMIC_REQUESTS`` wraps every request in its own transaction.
"""

from __future__ import annotations

import dataclasses

import pytest
from django.db import connection, connections, transaction

from tests.transparency.compare import compare_all, run_shape, send, url_of
from tests.transparency.conftest import every_level
from tests.transparency.shapes import BY_NAME, Data, get, new_question, retitle

LIST_AND_DETAIL = [BY_NAME["questions"], BY_NAME["page-number"]]
warm_first = pytest.mark.parametrize("warm_first", [False, True], ids=["cold", "warmed"])


class RolledBack(Exception):
    """Raised to leave an atomic block by rolling it back."""


def json_reads(shape):
    """The shape's JSON GETs: a list and a detail at least."""
    reads = tuple(req for req in shape.requests if req.method == "get" and not req.browsable)
    return dataclasses.replace(shape, requests=reads)


@every_level
@warm_first
@pytest.mark.parametrize("shape", LIST_AND_DETAIL, ids=str)
def test_a_rolled_back_transaction_leaves_nothing_in_the_cache(
    api, level: str, shape, data: Data, warm_first: bool
):
    shape = json_reads(shape)
    if warm_first:
        compare_all(api, level, shape, data, "before the transaction", hits=False)
    original = data.q[0].question_text
    with pytest.raises(RolledBack), transaction.atomic():
        retitle(0, "Never committed?")(data)
        new_question(data)
        compare_all(api, level, shape, data, "inside the transaction", hits=False)
        raise RolledBack
    data.q[0].question_text = original
    data.q.pop()
    compare_all(api, level, shape, data, "after the rollback", hits=False)
    compare_all(api, level, shape, data, "after the rollback, warm", hits=True)


@every_level
@warm_first
@pytest.mark.parametrize("shape", LIST_AND_DETAIL, ids=str)
def test_reads_inside_a_transaction_see_its_own_writes(
    api, level: str, shape, data: Data, warm_first: bool
):
    shape = json_reads(shape)
    if warm_first:
        compare_all(api, level, shape, data, "before the transaction", hits=False)
    with transaction.atomic():
        retitle(0, "Written in the transaction?")(data)
        new_question(data)
        compare_all(api, level, shape, data, "inside the transaction", hits=False)
        compare_all(api, level, shape, data, "inside the transaction, again", hits=False)
        detail = send(api, level, shape, get("/{q[0].pk}/"), data)
        assert detail.body["question_text"] == "Written in the transaction?"
    compare_all(api, level, shape, data, "after the commit", hits=False)
    compare_all(api, level, shape, data, "after the commit, warm", hits=True)


@pytest.fixture
def atomic_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """``ATOMIC_REQUESTS = True``, where Django's handler reads it (per connection)."""
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", True)
    assert connections.settings["default"]["ATOMIC_REQUESTS"] is True


@every_level
@pytest.mark.parametrize(
    "shape",
    [BY_NAME[name] for name in ("questions", "page-number", "lookup-username", "read-not-edit")],
    ids=str,
)
def test_atomic_requests_answer_as_plain_drf(api, level: str, shape, data: Data, atomic_requests):
    run_shape(api, level, shape, data)


@every_level
def test_atomic_requests_write_through_the_view_then_read(
    api, level: str, data: Data, atomic_requests
):
    shape = json_reads(BY_NAME["read-not-edit"])
    compare_all(api, level, shape, data, "cold", hits=False)
    compare_all(api, level, shape, data, "warm", hits=True)
    api.force_authenticate(data.u[0])
    url = url_of(shape, level, f"/{data.u[0].pk}/")
    response = api.patch(url, {"username": "patched-in-a-request"}, format="json")
    assert response.status_code == 200, response.content
    data.u[0].username = "patched-in-a-request"
    compare_all(api, level, shape, data, "after the write", hits=False)
    compare_all(api, level, shape, data, "after the write, warm", hits=True)
