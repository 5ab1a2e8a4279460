"""pytest fixture for projects that test with pytest-django.

Add ``pytest_plugins = ["drf_instcache.testing.fixtures"]`` to a ``conftest.py`` and
ask for ``instcache`` in a test (or make it ``autouse`` in your own fixture): the test
runs on an empty cache namespace of its own, and its database transaction counts as
committed for the cache (see :mod:`drf_instcache.testing.isolation`).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from drf_instcache.testing.isolation import isolated_cache


@pytest.fixture
def instcache(request: pytest.FixtureRequest) -> Iterator[None]:
    """An isolated cache namespace for one test (the database is set up first)."""
    marker = request.node.get_closest_marker("django_db")
    if "transactional_db" in request.fixturenames or "live_server" in request.fixturenames:
        request.getfixturevalue("transactional_db")
    elif marker is None:
        request.getfixturevalue("db")
    with isolated_cache(_databases(marker) if marker is not None else ["default"]):
        yield


def _databases(marker: pytest.Mark) -> list[str]:
    databases = marker.kwargs.get("databases") or ["default"]
    if databases == "__all__":
        from django.db import connections

        return list(connections)
    return list(databases)
