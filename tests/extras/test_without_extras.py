"""A project that installed only some extras starts, passes its checks and serves.

Each test runs a fresh interpreter in which the optional packages cannot be imported
(their ``sys.modules`` entry is None), because the test process itself has every extra.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

BLOCKER = """
import sys

for name in {names!r}:
    sys.modules[name] = None  # import raises ModuleNotFoundError, find_spec returns None
"""

ALL_EXTRAS_BUT_DISK = (
    *("orjson", "msgpack", "redis", "hiredis", "pymemcache", "celery"),
    *("prometheus_client", "opentelemetry", "debug_toolbar"),
)


def run_without(names: tuple[str, ...], code: str, tmp_path: Path) -> str:
    """Run ``code`` with the example project's settings, ``names`` unimportable."""
    script = BLOCKER.format(names=sorted(names)) + textwrap.dedent(code)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "example.settings",
        "DRF_INSTCACHE_VAR_DIR": str(tmp_path),
        "PYTHONPATH": str(ROOT),
    }
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_disk_extra_alone_passes_checks_and_serves_lists(tmp_path: Path) -> None:
    out = run_without(
        ALL_EXTRAS_BUT_DISK,
        """
        import django, io, json
        django.setup()
        from django.core.management import call_command
        from django.test import Client
        from django.test.utils import setup_test_environment

        errors = io.StringIO()
        call_command("check", stderr=errors)  # raises SystemCheckError on any Error
        call_command("migrate", verbosity=0)
        from example.polls.models import Question
        from django.utils import timezone
        Question._base_manager.bulk_create(
            Question(question_text=f"Q{n}", pub_date=timezone.now()) for n in range(3)
        )
        setup_test_environment()
        client = Client()
        bodies = [client.get("/api/questions/").json() for _ in range(2)]
        fast = [client.get("/api/fast/questions/").content for _ in range(2)]
        print(json.dumps({"warnings": errors.getvalue(), "equal": bodies[0] == bodies[1],
                          "fast_equal": fast[0] == fast[1], "count": len(bodies[0]["results"])}))
        """,
        tmp_path,
    )
    report = json.loads(out.strip().splitlines()[-1])
    assert report["count"] == 3
    assert report["equal"] and report["fast_equal"]
    assert "drf_instcache.W023" in report["warnings"]
    assert "drf-instcache[fast]" in report["warnings"]


def test_without_orjson_the_fast_path_writes_drfs_own_bytes(tmp_path: Path) -> None:
    out = run_without(
        ("orjson",),
        """
        import django, datetime, decimal, uuid
        django.setup()
        from rest_framework.renderers import JSONRenderer
        from drf_instcache import fastjson

        data = {
            "title": "caf\\u00e9 \\u2028 \\u2603", "when": datetime.datetime(2024, 1, 2, 3, 4, 5),
            "day": datetime.date(2024, 1, 2), "price": decimal.Decimal("1.10"),
            "id": uuid.UUID(int=7), "n": 2**70, "f": 1.5, "nested": [{"a": None, "b": True}],
        }
        items = fastjson.RenderedItems([fastjson.encode_representation(data)])
        assert fastjson.encode_representation(data) == JSONRenderer().render(data)
        envelope = {"count": 1, "next": None, "previous": "x\\u2029", "results": items}
        body = fastjson.SplicingJSONRenderer().render(envelope)
        expected = JSONRenderer().render({**envelope, "results": [data]})
        assert body == expected, (body, expected)
        assert fastjson.decode(fastjson.encode_representation(data))["n"] == 2**70
        print("ok")
        """,
        tmp_path,
    )
    assert out.strip() == "ok"


def test_without_orjson_list_query_results_round_trip(tmp_path: Path) -> None:
    out = run_without(
        ("orjson",),
        """
        import django, decimal
        django.setup()
        from drf_instcache.fastpath import listqueries

        raw = listqueries._encode(["t1"], [[1, 2], 2**70, str(decimal.Decimal("2.5"))])
        assert listqueries._decode(raw, ["t1"]) == [[1, 2], 2**70, "2.5"]
        assert listqueries._decode(raw, ["t2"]) is listqueries._STALE
        assert listqueries._decode(raw[:-1], ["t1"]) is listqueries._STALE
        print("ok")
        """,
        tmp_path,
    )
    assert out.strip() == "ok"


def test_check_names_the_extra_each_setting_needs(tmp_path: Path) -> None:
    out = run_without(
        ALL_EXTRAS_BUT_DISK,
        """
        import django
        django.setup()
        from django.core import checks
        from django.test import override_settings

        wanted = {
            "redis": {"DRF_INSTCACHE_BACKEND": "redis://127.0.0.1:6379/0"},
            "memcached": {"DRF_INSTCACHE_BACKEND": "memcached://127.0.0.1:11211"},
            "fast": {"DRF_INSTCACHE_CODEC": "orjson"},
            "celery": {"DRF_INSTCACHE_ASYNC": True},
        }
        for extra, overrides in wanted.items():
            with override_settings(**overrides):
                found = [m for m in checks.run_checks() if m.is_serious()]
            hints = " ".join(f"{m.msg} {m.hint}" for m in found)
            assert f"drf-instcache[{extra}]" in hints, (extra, hints)
        # Metrics and spans asked for explicitly, their library missing: a warning each.
        wanted = {
            "prometheus": {"DRF_INSTCACHE_PROMETHEUS": True},
            "opentelemetry": {"DRF_INSTCACHE_TRACING": True},
        }
        for extra, overrides in wanted.items():
            with override_settings(**overrides):
                found = [m for m in checks.run_checks() if m.id == "drf_instcache.W003"]
            hints = " ".join(f"{m.msg} {m.hint}" for m in found)
            assert f"drf-instcache[{extra}]" in hints, (extra, hints)
        with override_settings(DRF_INSTCACHE_PROMETHEUS=False, DRF_INSTCACHE_TRACING=False):
            assert not [m for m in checks.run_checks() if m.id == "drf_instcache.W003"]
        print("ok")
        """,
        tmp_path,
    )
    assert out.strip() == "ok"
