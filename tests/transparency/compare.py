"""The one comparison of the suite: a request to the plain view and to its cached twin.

Both answers are reduced to what a client can see and must not differ: the status (or
the exception the view raised), the headers that matter, and the body, parsed (JSON) or
normalized (the browsable API's HTML, without its CSRF tokens and the debug header).
Each side's own URL prefix reads as ``/tp-plain/``, so links compare equal.
"""

from __future__ import annotations

import difflib
import json
import pprint
import re
from dataclasses import dataclass
from typing import Any

from drf_instcache.counters import HEADER
from tests.transparency.shapes import Data, Req, Shape
from tests.transparency.views import LEVEL_PREFIXES

HEADERS = ("Content-Type", "Allow", "Vary", "Link", "Location", "WWW-Authenticate", "Retry-After")

_VOLATILE = (
    (re.compile(r'(name="csrfmiddlewaretoken" value=")[^"]*'), r"\1"),
    (re.compile(r'("csrfToken": ")[^"]*'), r"\1"),
    (re.compile(rf"^.*{HEADER}.*\n", re.MULTILINE), ""),
)


def normalize_html(text: str) -> str:
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return text


@dataclass
class Outcome:
    status: int | None
    headers: dict[str, str | None]
    body: Any
    hits: int | None = None
    """``hits=`` of the ``X-Instcache`` header (None without one)."""

    def seen(self) -> tuple[Any, ...]:
        return (self.status, self.headers, self.body)


def url_of(shape: Shape, level: str, path: str) -> str:
    return f"/tp-{LEVEL_PREFIXES[level]}/{shape.name}{path}"


def outcome(response: Any, level: str) -> Outcome:
    own = f"/tp-{LEVEL_PREFIXES[level]}/"

    def same(text: str) -> str:
        return text.replace(own, "/tp-plain/")

    headers = {name: same(response[name]) if name in response else None for name in HEADERS}
    content = response.content.decode()
    kind = headers["Content-Type"] or ""
    if "json" in kind and content:
        body: Any = json.loads(same(content))
    elif "html" in kind:
        body = normalize_html(same(content))
    else:
        body = same(content)
    hits = None
    if response.has_header(HEADER):
        counts = dict(part.split("=") for part in response[HEADER].split())
        hits = int(counts["hits"])
    return Outcome(response.status_code, headers, body, hits)


def send(api: Any, level: str, shape: Shape, req: Req, data: Data, url: str | None = None):
    """One request to the ``level`` flavour of ``shape``: its :class:`Outcome`."""
    url = url or url_of(shape, level, data.format(req.path))
    api.force_authenticate(None if req.user is None else data.u[req.user])
    extra = {"HTTP_ACCEPT": req.accept} if req.accept else {}
    try:
        response = getattr(api, req.method)(url, **extra)
    except Exception as error:  # plain DRF's own errors must be the twin's too
        return Outcome(None, {}, f"raised {type(error).__name__}: {error}")
    return outcome(response, level)


def difference(plain: Outcome, cached: Outcome) -> str:
    lines = []
    if plain.status != cached.status:
        lines.append(f"status: plain {plain.status}, cached {cached.status}")
    for name in HEADERS:
        ours, theirs = plain.headers.get(name), cached.headers.get(name)
        if ours != theirs:
            lines.append(f"{name}: plain {ours!r}, cached {theirs!r}")
    if plain.body != cached.body:
        texts = [
            body if isinstance(body, str) else pprint.pformat(body, width=100)
            for body in (plain.body, cached.body)
        ]
        diff = difflib.unified_diff(
            texts[0].splitlines(), texts[1].splitlines(), "plain", "cached", lineterm="", n=1
        )
        lines += list(diff)[:60]
    return "\n".join(lines)


def assert_same(api: Any, level: str, shape: Shape, req: Req, data: Data, phase: str) -> Outcome:
    """Plain, then cached: equal answers (following ``next`` links if ``req.follow``)."""
    plain = send(api, "plain", shape, req, data)
    cached = send(api, level, shape, req, data)
    assert cached.seen() == plain.seen(), (
        f"{phase}: {req} ({shape.name}, {level}) differs from plain DRF:\n"
        + difference(plain, cached)
    )
    next_link = plain.body.get("next") if req.follow and isinstance(plain.body, dict) else None
    pages = 0
    while next_link and pages < 10:
        pages += 1
        plain_page = send(api, "plain", shape, req, data, next_link)
        own = next_link.replace("/tp-plain/", f"/tp-{LEVEL_PREFIXES[level]}/")
        cached_page = send(api, level, shape, req, data, own)
        assert cached_page.seen() == plain_page.seen(), (
            f"{phase}: {req} page {pages + 1} ({shape.name}, {level}) differs from plain DRF:\n"
            + difference(plain_page, cached_page)
        )
        next_link = plain_page.body.get("next") if isinstance(plain_page.body, dict) else None
    return cached


def shows_rows(body: Any) -> bool:
    """Whether an answer holds rows (an empty page needs no cache to be right)."""
    if isinstance(body, dict):
        for envelope in ("results", "data"):
            if envelope in body:
                return bool(body[envelope])
    return bool(body) or body == ""  # a HEAD answer is empty


def compare_all(api: Any, level: str, shape: Shape, data: Data, phase: str, hits: bool) -> None:
    """Every request of ``shape``; with ``hits``, warm 200s must come from the cache."""
    for req in shape.requests:
        cached = assert_same(api, level, shape, req, data, phase)
        if (
            hits
            and shape.hits_for(req, level)
            and cached.status == 200
            and req.method in ("get", "head")
            and shows_rows(cached.body)
        ):
            assert cached.hits, (
                f"{phase}: {req} ({shape.name}, {level}) was not served from the cache "
                f"(hits={cached.hits})"
            )


def run_shape(api: Any, level: str, shape: Shape, data: Data) -> None:
    """Cold and warm; then each write, and cold and warm again."""
    compare_all(api, level, shape, data, "cold", hits=False)
    compare_all(api, level, shape, data, "warm", hits=True)
    if shape.writes:
        for write in shape.writes:
            write(data)
        compare_all(api, level, shape, data, "after writes", hits=False)
        compare_all(api, level, shape, data, "after writes, warm", hits=True)
