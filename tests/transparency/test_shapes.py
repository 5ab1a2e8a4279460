"""Each shape answers as plain DRF: cold, warm and after writes, per level and backend."""

from __future__ import annotations

import pytest

from tests.transparency.compare import run_shape
from tests.transparency.conftest import every_level
from tests.transparency.shapes import SHAPES, Data, Shape


@every_level
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_shape_matches_plain_drf(api, level: str, shape: Shape, data: Data):
    run_shape(api, level, shape, data)
