"""The in-process locmem backend as a conformance configuration."""

from __future__ import annotations

import uuid

import pytest

from drf_instcache.backends.locmem import LocMemBackend
from tests.backends.adapters import AdapterUnderTest


@pytest.fixture
def adapter_locmem() -> AdapterUnderTest:
    location = f"conformance-{uuid.uuid4().hex}"

    def make(**kwargs):
        return LocMemBackend(location, **kwargs)

    def round_trips(backend):
        # In-process: the only "wire" is the store's lock, which the backend counts.
        return lambda: backend.round_trips

    return AdapterUnderTest(id="locmem", make=make, round_trips=round_trips)
