"""A fixture for tests on pytest-django's ``db`` (a transaction rolled back afterwards).

The dirty-transaction rule makes the cache ignore whatever an open transaction wrote,
which would turn these tests' own data into cache bypasses. Setting the baseline makes
the test's transaction count as committed for the cache, as the public test helpers do
(:mod:`drf_instcache.testing.isolation`).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from drf_instcache import transactions


@pytest.fixture(autouse=True)
def test_transaction_counts_as_committed(request: pytest.FixtureRequest) -> Iterator[None]:
    marker = request.node.get_closest_marker("django_db")
    marked = marker is not None and not marker.kwargs.get("transaction")
    if "db" not in request.fixturenames and not marked:
        yield
        return
    request.getfixturevalue("db")
    transactions.set_baseline()
    yield
    transactions.clear_baseline()
