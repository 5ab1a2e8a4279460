"""Waiting for the near cache's invalidation stream in tests.

Redis announces every write under the namespace to the tracking connection, this
process's own writes included, and a busy machine can hold the tracking thread back for
a few requests. A test that writes, then asserts near-cache hits or kept bodies, can
see a late announcement of its own write evict what it just read. Redis sends the
announcements in order on one connection, so once a key written now is announced, every
earlier announcement has been taken in.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from drf_instcache.backends.near import near_layer

__all__ = ["wait_for_announcements"]


def wait_for_announcements(backend: Any, timeout: float = 10.0) -> None:
    """Return once the near cache in ``backend`` has taken in every announcement sent to it
    so far; ``TimeoutError`` after ``timeout`` seconds. Nothing to wait for before the
    tracking connection has started (the first read starts it)."""
    layer = near_layer(backend)
    if layer is None:
        raise ValueError(f"{backend!r} has no near cache")
    deadline = time.monotonic() + timeout
    tracking = layer.tracking
    if tracking is None:
        return
    while not tracking.alive or not layer.store.live:
        _wait(deadline, "the tracking connection")
        tracking = layer.tracking or tracking
    sentinel = f"{tracking.prefix}:instcache-caught-up:{uuid.uuid4().hex}"
    layer.adapter.client.set(sentinel, b"1", px=60_000)
    while not layer.store.announced(sentinel):
        _wait(deadline, "the announcement of a key written now")


def _wait(deadline: float, what: str) -> None:
    if time.monotonic() > deadline:
        raise TimeoutError(f"{what} did not arrive in time")
    time.sleep(0.002)
