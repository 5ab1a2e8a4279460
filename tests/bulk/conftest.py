"""Fixtures for the bulk-write tests: the fast-path tests' database, backends and URLs."""

from __future__ import annotations

from tests.fastpath.conftest import *  # noqa: F403  (the fast-path tests' fixtures and helpers)
