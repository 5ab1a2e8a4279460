"""A django-debug-toolbar panel: what the cache did for one request.

Install: ``pip install 'drf-instcache[debug-toolbar]'``, then add the panel to the
toolbar's list::

    DEBUG_TOOLBAR_PANELS = [
        *debug_toolbar.settings.PANELS_DEFAULTS,
        "drf_instcache.ops.debug_panel.InstcachePanel",
    ]

It lists every backend call the request made (operation, keys, keys found, time,
error), the totals (calls, keys asked for, hits, misses, time in the backend), and the
invalidations scheduled (to run when the transaction commits, or at once). It observes
only while the toolbar instruments a request (:mod:`drf_instcache.backends.observed`,
:func:`drf_instcache.core.transactions.add_schedule_observer`), and only the calls of
that request (a context variable), so concurrent requests do not mix.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import Any

from debug_toolbar.panels import Panel
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from drf_instcache.backends.observed import BackendCall, add_observer
from drf_instcache.core import transactions

MAX_KEYS_SHOWN = 20
"""Keys listed per call; the rest are counted."""

_recording: ContextVar[dict[str, list[dict[str, Any]]] | None] = ContextVar(
    "drf_instcache_panel", default=None
)


def _record_call(call: BackendCall) -> None:
    recording = _recording.get()
    if recording is None:
        return
    keys = list(call.keys)
    recording["calls"].append(
        {
            "backend": call.backend,
            "operation": call.operation,
            "keys": keys[:MAX_KEYS_SHOWN],
            "more_keys": max(0, len(keys) - MAX_KEYS_SHOWN),
            "key_count": len(keys),
            "hits": call.hits,
            "ms": round(call.duration * 1000, 3),
            "error": None if call.error is None else f"{type(call.error).__name__}: {call.error}",
        }
    )


def describe_work(work: Any) -> str:
    """A short account of scheduled invalidation work (the jobs of invalidation/)."""
    job = getattr(work, "__self__", work)
    parts: list[str] = []
    for refresh in getattr(job, "refreshes", None) or []:
        model, pk = getattr(refresh, "model_name", "?"), getattr(refresh, "pk", "?")
        parts.append(f"refresh {model} {pk}")
    parts += [f"delete {key}" for key in getattr(job, "raw_keys", None) or []]
    stale = getattr(job, "stale", None)
    if isinstance(stale, dict):
        for plan, pks in stale.items():
            name = getattr(plan, "model_name", type(plan).__name__)
            parts.append(f"drop rendered {name} {', '.join(map(str, sorted(pks, key=str)))}")
    if getattr(job, "lookups", None):
        parts.append(f"drop rendered entries of {len(job.lookups)} dependency lookup(s)")
    if parts:
        return "; ".join(parts)
    return getattr(work, "__qualname__", None) or repr(work)


def _record_scheduled(work: Any, deferred: bool) -> None:
    recording = _recording.get()
    if recording is not None:
        recording["invalidations"].append(
            {"what": describe_work(work), "when": "on commit" if deferred else "at once"}
        )


def _keys_text(call: dict[str, Any]) -> str:
    more = call["more_keys"]
    return ", ".join(call["keys"]) + (f" (+{more} more)" if more else "")


READS = ("get_many", "get_many_claiming")
"""Operations that read entries (a claiming read also leases the empty keys)."""


def summary(calls: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals of one request's calls."""
    reads = [call for call in calls if call["operation"] in READS]
    asked = sum(call["key_count"] for call in reads)
    hits = sum(call["hits"] or 0 for call in reads)
    return {
        "calls": len(calls),
        "keys_read": asked,
        "hits": hits,
        "misses": asked - hits,
        "errors": sum(1 for call in calls if call["error"]),
        "ms": round(sum(call["ms"] for call in calls), 3),
    }


class InstcachePanel(Panel):
    """Every drf-instcache backend call of the request, and the invalidations scheduled."""

    title = "drf-instcache"
    _token: Token[dict[str, list[dict[str, Any]]] | None] | None = None

    @property
    def nav_subtitle(self) -> str:
        totals = self.get_stats().get("totals")
        if not totals:
            return ""
        return (
            f"{totals['calls']} calls, {totals['hits']}/{totals['keys_read']} hits, "
            f"{totals['ms']:.1f} ms"
        )

    def enable_instrumentation(self) -> None:
        add_observer(_record_call)  # idempotent; it records only inside a request below
        transactions.add_schedule_observer(_record_scheduled)
        self._recorded: dict[str, list[dict[str, Any]]] = {"calls": [], "invalidations": []}
        self._token = _recording.set(self._recorded)

    def disable_instrumentation(self) -> None:
        if self._token is not None:
            _recording.reset(self._token)
            self._token = None

    def generate_stats(self, request: Any, response: Any) -> None:
        recorded = getattr(self, "_recorded", {"calls": [], "invalidations": []})
        self.record_stats(
            {
                "calls": recorded["calls"],
                "invalidations": recorded["invalidations"],
                "totals": summary(recorded["calls"]),
            }
        )

    @property
    def content(self) -> str:
        stats = self.get_stats()
        totals = stats.get("totals") or summary([])
        calls = stats.get("calls") or []
        invalidations = stats.get("invalidations") or []
        head = format_html(
            "<p>{} backend call(s), {} ms; {} key(s) read: {} hit(s), {} miss(es); "
            "{} error(s).</p>",
            totals["calls"],
            totals["ms"],
            totals["keys_read"],
            totals["hits"],
            totals["misses"],
            totals["errors"],
        )
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    call["operation"],
                    call["backend"],
                    ", ".join(call["keys"])
                    + (f" (+{call['more_keys']})" if call["more_keys"] else ""),
                    "" if call["hits"] is None else call["hits"],
                    call["ms"],
                    call["error"] or "",
                )
                for call in calls
            ),
        )
        table = format_html(
            "<table><thead><tr><th>Call</th><th>Backend</th><th>Keys</th><th>Found</th>"
            "<th>ms</th><th>Error</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )
        scheduled = format_html_join(
            "", "<li>{} ({})</li>", ((each["what"], each["when"]) for each in invalidations)
        )
        tail = (
            format_html("<h4>Invalidations scheduled</h4><ul>{}</ul>", scheduled)
            if invalidations
            else mark_safe("<p>No invalidation scheduled.</p>")
        )
        return format_html("{}{}{}", head, table, tail)
