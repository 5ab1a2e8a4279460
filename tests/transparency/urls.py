"""URL conf of the transparency suite: every shape at ``/tp-plain/``, ``/tp-instance/``
and ``/tp-fast/`` (each level in its own namespace), the targets of the versioned links,
and the example API (the target of the other hyperlinks)."""

from __future__ import annotations

from typing import Any

from django.urls import include, path

from example.urls import urlpatterns as example_urlpatterns
from tests.transparency.shapes import BY_NAME
from tests.transparency.views import link_target, twin

LINK_TARGETS = [
    path("questions/<pk>/", link_target, name="question-detail"),
    path("choices/<pk>/", link_target, name="choice-detail"),
    path("users/<pk>/", link_target, name="user-detail"),
]

TWINS: dict[str, dict[str, type]] = {}
"""``{level: {shape name: view class}}`` for the levels plain, instance and fast."""


def level_patterns(level: str) -> list[Any]:
    patterns: list[Any] = []
    TWINS[level] = {}
    for shape in BY_NAME.values():
        view = TWINS[level][shape.name] = twin(shape.view, level, keyed=shape.keyed)
        patterns += shape.routes(shape.name, view)
    return patterns


urlpatterns = [
    *(
        path(f"tp-{level}/", include((level_patterns(level), f"tp-{level}")))
        for level in ("plain", "instance", "fast")
    ),
    path("nsv-links/v1/", include((LINK_TARGETS, "v1"))),
    path("nsv-links/v2/", include((LINK_TARGETS, "v2"))),
    path("pathver-links/<str:version>/", include(LINK_TARGETS)),
    *example_urlpatterns,
]
