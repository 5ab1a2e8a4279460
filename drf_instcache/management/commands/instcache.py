"""``manage.py instcache``: warm, clear, stats, verify and inspect the instance cache.

The command finds what to act on by itself (see :mod:`drf_instcache.discovery`): views
using ``CachedViewMixin``, cache classes connected with the signal helpers, and
``DRF_INSTCACHE_CACHE_CLASSES``. With no model named, a sub-command acts on all of
them. The work itself lives in :mod:`drf_instcache.ops`; this module parses arguments
and prints.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from drf_instcache import settings as instcache_settings
from drf_instcache.core import counters, shared_stats
from drf_instcache.exceptions import BackendUnavailable, InstcacheError
from drf_instcache.invalidation.outbox import OUTBOX
from drf_instcache.management.progress import ProgressBar
from drf_instcache.ops import discovery
from drf_instcache.ops import maintenance as ops

SUBCOMMANDS = {
    "warm": "fill the cache with every row of the models, in batches",
    "clear": "delete this library's entries (all of them, or the named models')",
    "stats": "hits, misses, fallbacks and errors of every process, per model",
    "verify": "compare cached entries with their rows; --fix repairs them",
    "inspect": "show the key and decoded entry of one instance",
    "drain": "apply the invalidations waiting in the outbox (after a cache outage)",
}

LISTED = 20
"""Differences listed per model by ``verify`` (all of them with ``-v 2``)."""


def entries(count: int, noun: str = "entry") -> str:
    """``1 entry``, ``3 entries``."""
    return f"{count} {noun[:-1] + 'ies' if count != 1 else noun}"


class Command(BaseCommand):
    """``manage.py instcache SUBCOMMAND``: one ``handle_<subcommand>`` method per sub-command."""

    help = "Operate the drf-instcache instance cache: " + "; ".join(
        f"{name}: {text}" for name, text in SUBCOMMANDS.items()
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
        for name in ("warm", "clear", "verify"):
            each = sub.add_parser(name, help=SUBCOMMANDS[name], description=SUBCOMMANDS[name])
            each.add_argument(
                "models",
                nargs="*",
                metavar="MODEL",
                help="model names (question) or labels (polls.question); default: all",
            )
            each.add_argument(
                "--batch-size",
                type=int,
                default=ops.DEFAULT_BATCH_SIZE,
                help=f"rows per batch (default {ops.DEFAULT_BATCH_SIZE})",
            )
            if name == "warm":
                each.add_argument(
                    "--cache-version",
                    action="append",
                    dest="cache_versions",
                    metavar="VERSION",
                    help="cache version to fill (repeatable; default: the versions served)",
                )
            if name == "verify":
                each.add_argument(
                    "--fix", action="store_true", help="rewrite or delete every differing entry"
                )
        stats = sub.add_parser("stats", help=SUBCOMMANDS["stats"], description=SUBCOMMANDS["stats"])
        stats.add_argument("--json", action="store_true", help="print JSON")
        stats.add_argument(
            "--reset", action="store_true", help="start counting anew (after printing)"
        )
        sub.add_parser("drain", help=SUBCOMMANDS["drain"], description=SUBCOMMANDS["drain"])
        inspect = sub.add_parser(
            "inspect", help=SUBCOMMANDS["inspect"], description=SUBCOMMANDS["inspect"]
        )
        inspect.add_argument("model", metavar="MODEL", help="model name or app_label.model")
        inspect.add_argument("pk", metavar="PK", help="primary key")
        inspect.add_argument(
            "--cache-version", dest="cache_version", help="one version (default: every one)"
        )
        inspect.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        subcommand = options["subcommand"]
        try:
            getattr(self, f"handle_{subcommand}")(options)
        except BackendUnavailable as error:
            raise CommandError(f"the cache backend is unavailable: {error}") from error
        except (InstcacheError, ValueError) as error:
            # Unknown model or version, bad batch size, caching disabled: say so plainly.
            raise CommandError(str(error)) from error

    # -- helpers ------------------------------------------------------------------------
    def targets(self, names: Sequence[str]) -> list[discovery.Target]:
        found = discovery.discover()
        if not found:
            raise CommandError(f"no cached models found: known models: {discovery.known_names([])}")
        return discovery.select(found, names)

    def progress(self, label: str, total: int) -> ProgressBar:
        return ProgressBar(self.stderr, label, total)

    # -- warm ---------------------------------------------------------------------------
    def handle_warm(self, options: dict[str, Any]) -> None:
        for target in self.targets(options["models"]):
            versions = options.get("cache_versions") or None
            if versions:
                cache = target.cache()
                versions = [cache.resolve_version(version) for version in versions]
            count = ops.row_count(target.model) * len(versions or target.versions)
            with self.progress(f"warming {target.label}", count) as bar:
                reports = ops.warm(target, options["batch_size"], versions, bar.advance)
            for report in reports:
                extra = f", {report.not_cacheable} not cacheable" if report.not_cacheable else ""
                self.stdout.write(
                    f"warmed {target} version {report.version}: {report.rows} rows, "
                    f"{report.already_cached} already cached, {report.stored} stored{extra}"
                )

    # -- clear --------------------------------------------------------------------------
    def handle_clear(self, options: dict[str, Any]) -> None:
        if not options["models"]:
            ops.clear_namespace()
            self.stdout.write(
                "cleared every drf-instcache entry of the configured namespace "
                "(statistics kept; other data on the server untouched)"
            )
            return
        for target in self.targets(options["models"]):
            with self.progress(f"clearing {target.label}", ops.row_count(target.model)) as bar:
                deleted = ops.clear(target, options["batch_size"], bar.advance)
            versions = ", ".join(target.cached_versions())
            self.stdout.write(f"cleared {target}: {deleted} keys deleted (versions {versions})")

    # -- verify -------------------------------------------------------------------------
    def handle_verify(self, options: dict[str, Any]) -> None:
        fix = options.get("fix", False)
        differences = fixed = 0
        for target in self.targets(options["models"]):
            with self.progress(f"verifying {target.label}", ops.row_count(target.model)) as bar:
                report = ops.verify(target, fix, options["batch_size"], bar.advance)
            differences += len(report.differences)
            fixed += report.fixed
            self.stdout.write(
                f"verified {target}: {report.rows} rows, {report.entries} cached entries, "
                f"{len(report.differences)} differ"
            )
            shown = report.differences if options["verbosity"] >= 2 else report.differences[:LISTED]
            for difference in shown:
                self.stdout.write(f"  {difference}")
            if len(shown) < len(report.differences):
                hidden = len(report.differences) - len(shown)
                self.stdout.write(f"  ... and {hidden} more (-v 2 lists them all)")
        if fix:
            self.stdout.write(f"fixed {entries(fixed)}")
        elif differences:
            verb = "differs" if differences == 1 else "differ"
            raise CommandError(
                f"{entries(differences, 'cached entry')} {verb} from the database; "
                "run 'manage.py instcache verify --fix' to repair them"
            )

    # -- inspect ------------------------------------------------------------------------
    def handle_inspect(self, options: dict[str, Any]) -> None:
        results = []
        for target in self.targets([options["model"]]):
            for found in ops.inspect(target, options["pk"], options.get("cache_version")):
                results.append((target, found))
        if options.get("json"):
            payload = [
                {
                    "model": target.label,
                    "cache_class": target.cache_class_path,
                    "pk": options["pk"],
                    "version": found.version,
                    "key": found.key,
                    "server_key": found.server_key,
                    "cached": found.cached,
                    "size": found.size,
                    "matches_database": found.matches,
                    "error": found.error or None,
                    "entry": found.stored,
                    "expected": found.expected,
                }
                for target, found in results
            ]
            self.stdout.write(json.dumps(payload, indent=2, default=str))
            return
        for target, found in results:
            self.stdout.write(f"{target} pk={options['pk']} version {found.version}")
            self.stdout.write(f"  key:        {found.key}")
            if found.server_key is not None:
                self.stdout.write(f"  server key: {found.server_key}")
            if not found.cached:
                row = "the row gives no entry" if found.expected is None else "the row exists"
                self.stdout.write(f"  not cached ({row})")
                continue
            verdict = "yes" if found.matches else "NO (see 'instcache verify')"
            self.stdout.write(f"  cached:     {found.size} bytes; matches the database: {verdict}")
            if found.error:
                self.stdout.write(f"  unreadable: {found.error}")
            else:
                entry = json.dumps(found.stored, indent=2, default=str, ensure_ascii=False)
                self.stdout.write("  entry:      " + entry.replace("\n", "\n  "))

    # -- stats --------------------------------------------------------------------------
    def handle_drain(self, options: dict[str, Any]) -> None:
        backend = instcache_settings.get_backend()
        before = OUTBOX.backlog()
        if before is None:
            raise CommandError("the outbox table does not exist: run manage.py migrate")
        applied = OUTBOX.drain(backend)
        left = OUTBOX.backlog() or 0
        self.stdout.write(
            f"drf-instcache: applied {applied} of {before} outbox row(s), {left} left"
        )
        if left:
            raise CommandError(f"{left} outbox row(s) could not be applied: is the cache up?")

    def handle_stats(self, options: dict[str, Any]) -> None:
        stats = shared_stats.shared(include_self=False)
        backlog = OUTBOX.backlog()
        if options.get("json"):
            self.stdout.write(json.dumps({**stats.as_dict(), "outbox_backlog": backlog}, indent=2))
        else:
            self.write_stats(stats)
            shown = "no outbox table (run migrate)" if backlog is None else str(backlog)
            self.stdout.write(f"  outbox backlog: {shown}")
        if options.get("reset"):
            shared_stats.reset_shared()
            self.stdout.write("statistics reset")

    def write_stats(self, stats: counters.Stats) -> None:
        since = (
            datetime.fromtimestamp(stats.since, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            if stats.since
            else "nothing published yet"
        )
        ratio = f"{stats.hit_ratio:.1%}" if stats.hit_ratio is not None else "n/a"
        self.stdout.write(
            f"drf-instcache: {stats.processes} process(es) since {since}; hit ratio {ratio}"
        )
        totals = stats.counts.items()
        self.stdout.write("  " + ", ".join(f"{name.replace('_', ' ')} {n}" for name, n in totals))
        if stats.models:
            width = max(len(name) for name in stats.models)
            self.stdout.write(
                f"  {'model':<{width}}  {'hits':>10}  {'misses':>10}  {'fallbacks':>10}  ratio"
            )
            for name, counts in stats.models.items():
                lookups = counts["hits"] + counts["misses"]
                model_ratio = f"{counts['hits'] / lookups:.1%}" if lookups else "n/a"
                self.stdout.write(
                    f"  {name:<{width}}  {counts['hits']:>10}  {counts['misses']:>10}  "
                    f"{counts['fallbacks']:>10}  {model_ratio}"
                )
        interval = shared_stats.flush_interval()
        if interval:
            self.stdout.write(
                f"  (each process publishes every {interval:g} s: its last seconds may be missing)"
            )
