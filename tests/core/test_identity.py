"""Per-process memos keyed by backend must not pass state to a backend built later
at the address of a freed one (``id()`` is reused once an object is freed; a serial
number is not)."""

from __future__ import annotations

import pytest

from drf_instcache.backends.locmem import LocMemBackend
from drf_instcache.core import store as store_module
from drf_instcache.core.identity import serial
from drf_instcache.core.store import Store
from drf_instcache.drf import cold_pages


@pytest.fixture
def every_address_the_same(monkeypatch) -> None:
    """``id()`` as after the allocator reused a freed backend's memory: the same answer
    for the old object and the new one (whether CPython reuses an address at a given
    moment is up to its allocator, so it is not left to chance here)."""
    for module in (store_module, cold_pages):
        monkeypatch.setattr(module, "id", lambda obj: 1, raising=False)


def test_a_backend_built_where_a_freed_one_was_starts_cold(every_address_the_same):
    old = LocMemBackend("identity-old")
    Store(old).read(["k1", "k2"], "scope")  # nothing found: cold
    old.set_many({"k1": b"1", "k2": b"2"})
    Store(old).read(["k1", "k2"], "scope")  # all found: the scope is warm
    assert not Store(old).last_read_cold("scope")
    new = LocMemBackend("identity-new")
    assert serial(new) != serial(old)
    assert Store(new).last_read_cold("scope"), "a new backend has read nothing yet"


def test_a_serial_is_the_objects_own_not_the_wrapped_backends():
    class Forwarding:
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

    inner = LocMemBackend("identity-inner")
    wrapper = Forwarding(inner)
    assert serial(inner) == serial(inner)
    assert serial(wrapper) != serial(inner)
    plain = object()  # no __dict__: nothing to keep a number in
    assert serial(plain) == id(plain)
