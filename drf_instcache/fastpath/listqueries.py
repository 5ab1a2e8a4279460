"""Cached list queries: how many rows a list has and which are on the page, from the cache.

Opt-in: ``DRF_INSTCACHE_CACHE_LIST_QUERIES = True`` (a view may opt out with
``cache_list_queries = False``). Off, a fast-path list asks the database for its count
and its page's primary keys on every request; those two queries are then most of what
the request costs (a ``COUNT(*)`` over 10,000 rows takes longer than serving a whole
cached response). On, their *results* are cached too:

* a result is stored under a digest of the key query's SQL and parameters (so filters,
  ordering, per-user querysets and page bounds each have their own), together with the
  *generation* of every table the query reads;
* a generation is a random token per table (``dig:<table>``, shared by every
  database alias, so a write through the primary invalidates reads from a replica); every
  committed save, delete or many-to-many change of a model deletes the generations of
  its tables, so a later reader creates new ones and every result computed from the
  old rows stops matching. No result is ever served for tables that changed since it
  was computed, whatever the order of readers and writers: a reader records the tokens
  it saw *before* querying;
* queries whose result cannot be pinned to their tables are never cached: subqueries,
  ``extra()``, unions, and volatile SQL functions (``NOW()``, ``RANDOM()``...);
* each process remembers its latest results with their tokens, so a warm list can read
  its page's entries in the same round trip as the tokens (:meth:`CachedKeys.guess_rows`)
  and use them once the tokens prove the page unchanged: one round trip per warm list.

Invalidation is per table, not per instance: after a write to ``polls_choice`` every
cached list query reading that table runs again once. The representations themselves
stay per instance. Writes that send no signal (``QuerySet.update``, ``bulk_create``, raw
SQL) leave results stale until they expire, as they do for every cached entry; call
:func:`tables_changed` after them. The receivers that bump generations are connected in
every process by the app config, whatever the setting, and do nothing while it is off.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import re
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Model, QuerySet
from django.utils import timezone
from django.utils.functional import cached_property

from drf_instcache import settings as instcache_settings
from drf_instcache.backends.base import Backend, supports_leases
from drf_instcache.core import transactions
from drf_instcache.exceptions import BackendUnavailable

__all__ = ["CachedKeys", "describe", "enabled", "generation_key"]
try:
    import orjson
except ImportError:  # without the [fast] extra the standard library reads and writes the same JSON
    orjson = None  # type: ignore[assignment]


logger = logging.getLogger(__name__)

SETTING = "CACHE_LIST_QUERIES"
GENERATION_NAMESPACE = "dig"
RESULT_NAMESPACE = "diq"
RESULT_MARKER = b"Q1"
GENERATION_TIMEOUT = 30 * 24 * 3600.0
"""Generations outlive results; losing one early only costs a recomputation."""

_SELECT = re.compile(r"\bSELECT\b", re.IGNORECASE)
_VOLATILE = re.compile(
    r"\b(NOW|RANDOM|RAND|UUID|GEN_RANDOM_UUID|NEXTVAL|SETSEED|CURRENT_DATE|CURRENT_TIME"
    r"|CURRENT_TIMESTAMP|LOCALTIME|LOCALTIMESTAMP|CLOCK_TIMESTAMP|STATEMENT_TIMESTAMP"
    r"|TRANSACTION_TIMESTAMP|CURRENT_USER|SYSDATE|GETDATE)\b",
    re.IGNORECASE,
)


def enabled() -> bool:
    """Whether list queries are cached (the setting, and caching not disabled)."""
    return bool(instcache_settings.get_setting(SETTING, False)) and instcache_settings.enabled()


def generation_key(table: str) -> str:
    return f"{GENERATION_NAMESPACE}:{table}"


@dataclass(frozen=True)
class ListQuery:
    """What identifies a key query's result: its SQL, and the tables it reads."""

    alias: str
    digest: str
    tables: tuple[str, ...]

    def result_key(self, part: str) -> str:
        return f"{RESULT_NAMESPACE}:{self.digest}:{part}"

    def generation_keys(self) -> list[str]:
        return [generation_key(table) for table in self.tables]


def describe(queryset: QuerySet) -> ListQuery | None:
    """The identity of ``queryset``'s result, or None when it must not be cached.

    Compiling a query costs about 50 microseconds, more than the rest of a warm list, so
    the answer is remembered per *query state*: the pickled query (Django supports
    pickling queries, and the pickle holds everything the SQL is built from), its
    database alias and the active time zone (which date lookups put in the SQL). Equal
    states compile to equal SQL, so a remembered answer is never wrong; a state that
    cannot be pickled is compiled every time.
    """
    try:
        state = pickle.dumps(
            (queryset.db, timezone.get_current_timezone(), queryset.query),
            protocol=pickle.HIGHEST_PROTOCOL,
        )
    except Exception:  # unpicklable values in the query: just compile
        return _describe(queryset)
    memo = _descriptions
    if state in memo:
        return memo[state]
    if len(memo) >= _DESCRIPTIONS_SIZE:
        memo.clear()
    description = memo[state] = _describe(queryset)
    return description


_DESCRIPTIONS_SIZE = 1024
_descriptions: dict[bytes, ListQuery | None] = {}
"""Recent :func:`describe` answers by query state (bounded, emptied when full)."""


def _describe(queryset: QuerySet) -> ListQuery | None:
    query = queryset.query
    if query.extra or query.extra_tables or query.combinator:
        return None
    try:
        sql, params = query.get_compiler(using=queryset.db).as_sql()
    except EmptyResultSet:
        return None
    if len(_SELECT.findall(sql)) != 1 or _VOLATILE.search(sql):
        return None
    tables = tuple(sorted({join.table_name for join in query.alias_map.values()}))
    if not tables:
        return None
    identity = f"{queryset.db}\x00{sql}\x00{params!r}"
    digest = hashlib.sha1(identity.encode(), usedforsecurity=False).hexdigest()
    return ListQuery(queryset.db, digest, tables)


def _encode(tokens: list[str], value: Any) -> bytes:
    stored = {"g": tokens, "v": value}
    if orjson is not None:
        try:
            # Keys orjson does not know (Decimal...) become what Django's encoder makes of them.
            return RESULT_MARKER + orjson.dumps(stored, default=_django_default)
        except orjson.JSONEncodeError:  # an integer beyond 64 bits
            pass
    body = json.dumps(stored, cls=DjangoJSONEncoder, separators=(",", ":")).encode()
    return RESULT_MARKER + body


_django_default = DjangoJSONEncoder().default


def _decode(raw: bytes | None, tokens: list[str]) -> Any:
    """The value of a stored result computed under ``tokens``; ``_STALE`` otherwise."""
    if raw is None or bytes(raw[:2]) != RESULT_MARKER:
        return _STALE
    try:
        stored = orjson.loads(raw[2:]) if orjson is not None else json.loads(bytes(raw[2:]))
    except ValueError:  # orjson.JSONDecodeError and json.JSONDecodeError are ValueErrors
        return _STALE
    if not isinstance(stored, dict) or stored.get("g") != tokens:
        return _STALE
    return stored.get("v", _STALE)


_STALE: Any = object()

_RECENT_SIZE = 1024
_recent: dict[tuple[str, str], tuple[list[str], Any]] = {}
"""This process's latest results: ``(digest, part) -> (generations, value)``.

They let a warm list read its page's entries in the *same* round trip as the
generations (see :meth:`CachedKeys.guess_rows`), and save decoding a stored result. A result
is only ever used after the current generations were read and found equal to its own,
exactly as a stored one is.
"""


def _remember(digest: str, part: str, tokens: list[str], value: Any) -> None:
    if len(_recent) >= _RECENT_SIZE:
        _recent.clear()
    _recent[(digest, part)] = (tokens, value)


class CachedKeys:
    """A list's primary keys as a paginator sees them: ``count()``, slices, iteration.

    Answers come from the cache while the tables are unchanged, else from the list's
    queryset, asked only for primary keys (and are stored by :meth:`flush`). The
    ``values_list("pk")`` clone is made only when the database is asked: a warm page
    never needs it.
    :meth:`prefetch` reads the generations and the results the caller expects to need
    with one ``get_many``, so a warm page costs one cache read and no query.
    """

    def __init__(self, queryset: QuerySet, description: ListQuery, backend: Backend) -> None:
        self.queryset = queryset
        self.description = description
        self.backend = backend
        self.tokens: list[str] | None = None
        self.window: tuple[int, int] | None = None
        self._found: dict[str, Any] = {}
        self._pending: dict[str, bytes] = {}
        self._count: int | None = None

    @cached_property
    def keys(self) -> QuerySet:
        """The list's primary keys, in its order, as a queryset."""
        return self.queryset.values_list("pk", flat=True)

    # -- what paginators use ----------------------------------------------------------
    @property
    def ordered(self) -> bool:
        return self.queryset.ordered

    @property
    def model(self) -> type[Model]:
        return self.queryset.model

    def count(self) -> int:
        if self._count is None:
            self._count = self._answer("count", self.queryset.count)
        return self._count

    def __getitem__(self, index: Any) -> Any:
        if not isinstance(index, slice) or index.step is not None:
            return self.keys[index]
        start, stop = index.start or 0, index.stop
        if start < 0 or (stop is not None and stop < 0):
            return list(self.keys[index])
        window = (start, stop)
        # Django's paginator cuts the last page at the count: same rows as the window
        # the request asked for, so the same cached result.
        if (
            self.window is not None
            and start == self.window[0]
            and stop is not None
            and self._count is not None
            and stop == self._count
            and stop <= self.window[1]
        ):
            window = self.window
        part = f"keys:{window[0]}:{'' if window[1] is None else window[1]}"
        return self._answer(part, lambda: list(self.keys[index]))

    def __iter__(self) -> Iterator[Any]:
        return iter(self._answer("all", lambda: list(self.keys)))

    def __len__(self) -> int:
        return len(self._answer("all", lambda: list(self.keys)))

    # -- the cache --------------------------------------------------------------------
    @staticmethod
    def parts(
        count: bool = False, window: tuple[int, int] | None = None, everything: bool = False
    ) -> list[str]:
        """The names of the results a request needs (count, a window of keys, all keys)."""
        return (
            (["count"] if count else [])
            + ([f"keys:{window[0]}:{window[1]}"] if window else [])
            + (["all"] if everything else [])
        )

    def guess_rows(
        self, window: tuple[int, int] | None = None, everything: bool = False
    ) -> list[Any] | None:
        """The keys this process last saw in ``window`` (or in the whole list), or None.

        Unchecked: the caller may only *read* with it (the entries of a likely page,
        in :meth:`prefetch`'s round trip), never serve it before :meth:`prefetch` has
        compared its generations with the current ones.
        """
        part = f"keys:{window[0]}:{window[1]}" if window else "all" if everything else None
        known = _recent.get((self.description.digest, part)) if part else None
        return None if known is None else known[1]

    def prefetch(
        self,
        count: bool = False,
        window: tuple[int, int] | None = None,
        everything: bool = False,
        also: Sequence[str] = (),
    ) -> dict[str, bytes] | None:
        """Read the generations and the expected results in one ``get_many``.

        ``also``: more keys to read in the same round trip (the entries of the page this
        process last saw, see :meth:`guess_rows`); what was found of them is returned
        (the mapping may hold the generations and results too). A result
        is used when it was computed under the current generations, whether it comes from
        the cache or from this process's memory of recent results. None when the backend
        failed (nothing was read; the list asks the database).
        """
        self.window = window
        parts = self.parts(count, window, everything)
        generation_keys = self.description.generation_keys()
        result_keys = {self.description.result_key(part): part for part in parts}
        try:
            raw = self.backend.get_many([*generation_keys, *result_keys, *also])
            self.tokens = self._generations(generation_keys, raw)
        except BackendUnavailable as error:
            logger.debug("drf-instcache: list query cache unavailable: %s", error)
            self.tokens = None
            return None
        digest = self.description.digest
        for key, part in result_keys.items():
            known = _recent.get((digest, part))
            if known is not None and known[0] == self.tokens:
                self._found[part] = known[1]
                continue
            value = _decode(raw.get(key), self.tokens)
            if value is not _STALE:
                self._found[part] = value
                _remember(digest, part, self.tokens, value)
        return raw  # holds what was found of ``also`` (and the results, harmlessly)

    def flush(self) -> None:
        """Store the results computed from the database (one write)."""
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        transactions.unless_rolled_back(lambda: self._store(pending))

    def _store(self, pending: dict[str, bytes]) -> None:
        try:
            self.backend.set_many(pending)
        except BackendUnavailable as error:
            logger.debug("drf-instcache: list query results not stored: %s", error)

    def _answer(self, part: str, compute: Any) -> Any:
        if part in self._found:
            return self._found[part]
        value = compute()
        self._found[part] = value
        if self.tokens is not None:
            self._pending[self.description.result_key(part)] = _encode(self.tokens, value)
            _remember(self.description.digest, part, self.tokens, value)
        return value

    def _generations(self, keys: list[str], raw: dict[str, bytes]) -> list[str]:
        """The current token of every table, creating the missing ones."""
        missing = {key: secrets.token_hex(8).encode() for key in keys if key not in raw}
        if missing:
            if supports_leases(self.backend):
                won = set(self.backend.add_many(missing, timeout=GENERATION_TIMEOUT))  # type: ignore[attr-defined]
                lost = [key for key in missing if key not in won]
                raw = {**raw, **{key: missing[key] for key in won}}
                if lost:  # another reader created them first: use theirs
                    raw.update(self.backend.get_many(lost))
            else:
                self.backend.set_many(missing, timeout=GENERATION_TIMEOUT)
                raw = {**raw, **missing}
        return [bytes(raw.get(key, b"?")).decode("ascii", "replace") for key in keys]


# -- generations: bumped on every committed write ------------------------------------------
