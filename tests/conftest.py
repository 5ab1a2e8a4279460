"""Fixtures every test module shares."""

import pytest

from tests.committed import test_transaction_counts_as_committed  # noqa: F401  (autouse)


@pytest.fixture(scope="session", autouse=True)
def _close_the_outbox_connection(django_db_setup, django_db_blocker):
    """The outbox writes on a connection of its own: close it before the test database
    is dropped (an open session would keep it)."""
    yield
    from drf_instcache.invalidation.outbox import OUTBOX

    OUTBOX.close()
