"""An in-process dictionary backend, for tests and demos.

It keeps the full Backend semantics (namespaces, expiry, item limit, thread safety) so
code exercised against it behaves the same on a real server, but its data lives in one
process: never use it where several processes serve the same API.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from drf_instcache.backends.base import BaseBackend

# All LocMemBackend objects with the same location share one store, like Django's
# LocMemCache, so two objects with different prefixes model two apps on one server.
_STORES: dict[str, tuple[threading.Lock, dict[str, tuple[bytes, float | None]]]] = {}
_STORES_LOCK = threading.Lock()


class LocMemBackend(BaseBackend):
    """Process-local storage with the same semantics as the server-backed adapters."""

    scheme = "locmem"

    def __init__(self, location: Any = None, **kwargs: Any) -> None:
        super().__init__(location or "default", **kwargs)
        with _STORES_LOCK:
            self._lock, self._data = _STORES.setdefault(str(self.location), (threading.Lock(), {}))
        self.round_trips = 0

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        if not keys:
            return {}
        mapping = self.server_keys(keys)
        now = time.monotonic()
        found: dict[str, bytes] = {}
        with self._lock:
            self.round_trips += 1
            for server_key, key in mapping.items():
                entry = self._data.get(server_key)
                if entry is None:
                    continue
                value, expires = entry
                if expires is not None and expires <= now:
                    del self._data[server_key]
                    continue
                found[key] = value
        return found

    def set_many(self, items: Mapping[str, bytes], timeout: float | None = None) -> None:
        self.store(items, timeout, self._write)

    def _write(self, fitting: dict[str, bytes], lifetime: float | None) -> None:
        expires = None if lifetime is None else time.monotonic() + lifetime
        with self._lock:
            self.round_trips += 1
            for key, value in fitting.items():
                self._data[self.server_key(key)] = (bytes(value), expires)

    def add_many(self, items: Mapping[str, bytes], timeout: float | None = None) -> list[str]:
        """Store the items whose keys are absent or expired, atomically under the lock."""
        return self.conditional_write(
            "add_many",
            items,
            timeout,
            lambda fitting, lifetime: self._store_where(
                {key: (None, value) for key, value in fitting.items()}, lifetime
            ),
        )

    def compare_and_set_many(
        self, items: Mapping[str, tuple[bytes, bytes]], timeout: float | None = None
    ) -> list[str]:
        """Store ``new`` where the key holds exactly ``expected``, atomically under the lock."""
        return self.conditional_write(
            "compare_and_set_many", items, timeout, self._store_where, swaps=True
        )

    def _store_where(
        self, items: Mapping[str, tuple[bytes | None, bytes]], lifetime: float | None
    ) -> list[str]:
        """Store ``new`` where the key's live value is ``expected`` (None: no value)."""
        now = time.monotonic()
        expires = None if lifetime is None else now + lifetime
        stored: list[str] = []
        with self._lock:
            self.round_trips += 1
            for key, (expected, new) in items.items():
                server_key = self.server_key(key)
                entry = self._data.get(server_key)
                live = entry is not None and (entry[1] is None or entry[1] > now)
                current = entry[0] if live and entry is not None else None
                if current == expected:
                    self._data[server_key] = (bytes(new), expires)
                    stored.append(key)
        return stored

    def delete_many(self, keys: Sequence[str]) -> None:
        if not keys:
            return
        with self._lock:
            self.round_trips += 1
            for server_key in self.server_keys(keys):
                self._data.pop(server_key, None)

    def clear(self) -> None:
        head = f"{self.key_prefix}:"
        with self._lock:
            self.round_trips += 1
            for server_key in [k for k in self._data if k.startswith(head)]:
                del self._data[server_key]
