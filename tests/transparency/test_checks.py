"""``manage.py check`` names each view the fast path cannot serve, as a Warning.

Such a view is served by plain DRF (the shapes' tests check that it answers as plain
DRF does), so the check must not stop the project with an Error. The check's id is the
library's to choose: any ``drf_instcache.`` Warning other than the existing W020
(undeclared dependencies) and W021 (not connected at start-up) naming the view.
"""

from __future__ import annotations

import pytest
from django.core.checks import ERROR, WARNING, run_checks

from tests.transparency.shapes import SHAPES
from tests.transparency.urls import TWINS

OTHER_WARNINGS = {"drf_instcache.W020", "drf_instcache.W021"}


def about(view: type, messages: list) -> list:
    return [
        message
        for message in messages
        if view.__name__ in message.msg or view.__qualname__ in str(message.obj)
    ]


@pytest.mark.parametrize("shape", [shape for shape in SHAPES if shape.fast_unservable], ids=str)
def test_a_view_the_fast_path_cannot_serve_is_a_warning(shape):
    view = TWINS["fast"][shape.name]
    messages = about(view, run_checks())
    assert not [message for message in messages if message.level >= ERROR], messages
    assert [
        message
        for message in messages
        if message.level == WARNING
        and (message.id or "").startswith("drf_instcache.")
        and message.id not in OTHER_WARNINGS
    ], f"no warning names {view.__name__}: {messages}"


def test_the_catalogue_passes_the_check():
    """Every other shape is servable, or left to plain DRF: nothing is an Error."""
    errors = [message for message in run_checks() if message.level >= ERROR]
    assert not errors, errors
