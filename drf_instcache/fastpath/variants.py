"""Variants of a rendered entry: one per host (hyperlinks) or per declared context key.

A serializer with hyperlinks renders ``https://api.example.com/...`` for one request
and ``http://10.0.0.5:8000/...`` for another, so its cached output is kept per
*variant* (scheme, host, API version, format suffix, and the view's context key if it
declares one). An invalidation must then delete the entry of *every* variant, and no
process can guess which variants others have written. So each rendered plan keeps a
small *index* in the cache: ``{variant: token}``. Entry keys carry the token, not the
variant:

* a reader learns its variant's token once per process and checks it on every read
  (the index key rides along in the same ``get_many``, so it costs no round trip);
* a writer reads the index and deletes the keys of every token listed;
* if the index disappears (evicted, expired, or deleted by an invalidation that could
  not read it), readers register their variants again under *new* tokens, so entries
  written under the old ones are never read again: nothing stale can be served.

Registration is an atomic add or compare-and-set on backends with conditional writes
(:class:`~drf_instcache.backends.base.LeasingBackend`); elsewhere it is a plain write,
and two processes registering at the same instant may drop one variant, which then
re-registers on its next read. At most :data:`MAX_VARIANTS` variants are kept per plan:
beyond that (say, a wildcard ``ALLOWED_HOSTS`` and arbitrary ``Host`` headers) requests
are rendered without caching, and a warning is logged once.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import weakref
from typing import Any

from drf_instcache.backends.base import Backend, supports_leases
from drf_instcache.exceptions import CorruptValue

logger = logging.getLogger(__name__)

INDEX_NAMESPACE = "dir-variants"
INDEX_MARKER = b"V1"
INDEX_TIMEOUT = 30 * 24 * 3600.0
"""Lifetime of an index, in seconds. Losing it early is safe (see the module docs)."""
MAX_VARIANTS = 64
REGISTRATION_ATTEMPTS = 5


def encode_index(index: dict[str, str]) -> bytes:
    return INDEX_MARKER + json.dumps(index, sort_keys=True, separators=(",", ":")).encode()


def decode_index(raw: bytes | None) -> dict[str, str]:
    """The ``{variant: token}`` map in an index value; empty when there is none."""
    if raw is None:
        return {}
    raw = bytes(raw)
    if not raw.startswith(INDEX_MARKER):
        raise CorruptValue("variant index without its marker")
    try:
        index = json.loads(raw[len(INDEX_MARKER) :])
    except ValueError as error:
        raise CorruptValue(f"variant index does not parse: {error}") from error
    if not isinstance(index, dict):
        raise CorruptValue("variant index is not a mapping")
    return index


class VariantIndex:
    """The index of one rendered plan: which variants exist, under which tokens."""

    def __init__(self, plan_key: str) -> None:
        self.key = f"{INDEX_NAMESPACE}:{plan_key}"
        self._lock = threading.Lock()
        # Per backend object, so override_settings (a new backend) starts afresh.
        self._tokens: weakref.WeakKeyDictionary[Any, dict[str, str]] = weakref.WeakKeyDictionary()
        self._warned = False

    # -- reading ------------------------------------------------------------------------
    def known_token(self, backend: Backend, variant: str) -> str | None:
        """The token this process last saw for ``variant`` (no I/O)."""
        return self._tokens.get(backend, {}).get(variant)

    def confirms(self, backend: Backend, variant: str, token: str, raw: bytes | None) -> bool:
        """Whether the index value read with the entries still lists ``token``."""
        try:
            current = decode_index(raw).get(variant)
        except CorruptValue:
            current = None
        if current == token:
            return True
        self._forget(backend, variant)
        return False

    def token(self, backend: Backend, variant: str) -> str | None:
        """The token of ``variant``: remembered, read from the index, or registered.

        None when the plan already has :data:`MAX_VARIANTS` variants (or registration
        lost every race): the request is then rendered without caching. Raises
        :class:`~drf_instcache.exceptions.BackendUnavailable` when the backend is down.
        """
        known = self.known_token(backend, variant)
        if known is not None:
            return known
        for _ in range(REGISTRATION_ATTEMPTS):
            raw = backend.get_many([self.key]).get(self.key)
            try:
                index = decode_index(raw)
            except CorruptValue:
                index = {}
            if variant in index:
                return self._remember(backend, variant, index[variant])
            if len(index) >= MAX_VARIANTS:
                self._warn_full()
                return None
            token = secrets.token_hex(6)
            if self._register(backend, raw, {**index, variant: token}):
                return self._remember(backend, variant, token)
        return None

    # -- invalidation -------------------------------------------------------------------
    @staticmethod
    def tokens_in(raw: bytes | None) -> list[str]:
        """Every token an index value lists (none when it is missing or unreadable)."""
        try:
            return list(decode_index(raw).values())
        except CorruptValue:
            return []

    # -- internals ----------------------------------------------------------------------
    def _register(self, backend: Backend, raw: bytes | None, index: dict[str, str]) -> bool:
        value = encode_index(index)
        if not supports_leases(backend):
            backend.set_many({self.key: value}, timeout=INDEX_TIMEOUT)
            return True
        leasing: Any = backend
        if raw is None:
            return bool(leasing.add_many({self.key: value}, timeout=INDEX_TIMEOUT))
        return bool(leasing.compare_and_set_many({self.key: (raw, value)}, timeout=INDEX_TIMEOUT))

    def _remember(self, backend: Backend, variant: str, token: str) -> str:
        with self._lock:
            self._tokens.setdefault(backend, {})[variant] = token
        return token

    def _forget(self, backend: Backend, variant: str) -> None:
        with self._lock:
            self._tokens.get(backend, {}).pop(variant, None)

    def _warn_full(self) -> None:
        if not self._warned:
            self._warned = True
            logger.warning(
                "drf-instcache: %s has %d variants (hosts or context keys) already; "
                "further ones are rendered without caching. Check ALLOWED_HOSTS and the "
                "view's rendered_context_key.",
                self.key,
                MAX_VARIANTS,
            )
