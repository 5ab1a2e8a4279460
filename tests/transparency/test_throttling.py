"""Throttles count cached requests as plain DRF counts them: the same request is a 429."""

from __future__ import annotations

import pytest
from django.core.cache import cache as django_cache

from tests.transparency.compare import send
from tests.transparency.conftest import every_level
from tests.transparency.shapes import THROTTLED, Data, get

REQUESTS = (
    get("/", 0),
    get("/{q[0].pk}/", 0),
    get("/", 0),
    get("/{q[2].pk}/", 0),
    get("/", 0),
    get("/", 2),
)
"""Three a minute: u0's 4th and 5th requests are throttled, u2's first is not."""


@every_level
@pytest.mark.parametrize("shape", THROTTLED, ids=str)
def test_throttled_on_the_same_request_as_plain_drf(api, level: str, shape, data: Data):
    def sequence(flavour: str):
        django_cache.clear()  # the throttles' history
        return [send(api, flavour, shape, req, data) for req in REQUESTS]

    plain = sequence("plain")
    assert [answer.status for answer in plain] == [200, 200, 200, 429, 429, 200]
    cached = sequence(level)
    assert [answer.seen() for answer in cached] == [answer.seen() for answer in plain]
    assert cached[2].hits, "the warm list was not served from the cache"
