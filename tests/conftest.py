"""Fixtures every test module shares."""

from tests.committed import test_transaction_counts_as_committed  # noqa: F401  (autouse)
