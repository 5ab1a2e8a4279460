"""Per-process memos keyed by backend must not pass state to a backend built later
at the address of a freed one (``id()`` is reused; a serial number is not)."""

from __future__ import annotations

import gc

from drf_instcache.backends.locmem import LocMemBackend
from drf_instcache.core.identity import serial
from drf_instcache.core.store import Store


def a_backend_at_a_reused_address() -> tuple[int, LocMemBackend]:
    """The serial of a freed backend, and a new backend CPython placed at its address."""
    for attempt in range(1000):
        old = LocMemBackend(f"identity-{attempt}")
        Store(old).read(["k1", "k2"], "scope")  # nothing found: cold
        old.set_many({"k1": b"1", "k2": b"2"})
        Store(old).read(["k1", "k2"], "scope")  # all found: the scope is warm
        assert not Store(old).last_read_cold("scope")
        address, number = id(old), serial(old)
        del old
        gc.collect()
        new = LocMemBackend(f"identity-new-{attempt}")
        if id(new) == address:
            return number, new
    raise AssertionError("CPython never reused a freed backend's address")


def test_a_backend_built_where_a_freed_one_was_starts_cold():
    old_serial, new = a_backend_at_a_reused_address()
    assert serial(new) != old_serial
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
