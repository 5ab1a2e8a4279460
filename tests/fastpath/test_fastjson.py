"""Cached JSON bytes parse to what DRF's renderer writes, and splice into any envelope."""

from __future__ import annotations

import datetime
import decimal
import json
import uuid

import pytest
from django.utils.functional import lazy
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer

from drf_instcache.fastjson import (
    RenderedItems,
    RenderedObject,
    SplicingJSONRenderer,
    encode_representation,
    with_splicing,
)

VALUES = {
    "text": 'caf\u00e9 \u2028 line \u2029 para "quoted" \\ back',
    "int": 7,
    "big": 2**70,
    "float": 0.1,
    "none": None,
    "bool": True,
    "list": [1, "two", {"three": 3}],
    "datetime": datetime.datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=datetime.UTC),
    "naive": datetime.datetime(2024, 5, 1, 12, 0),
    "date": datetime.date(2024, 5, 1),
    "time": datetime.time(12, 30, 15, 5),
    "duration": datetime.timedelta(days=1, seconds=5),
    "decimal": decimal.Decimal("12.50"),
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "lazy": lazy(lambda: "translated", str)(),
    5: "int key",
}


def drf(data) -> bytes:
    return JSONRenderer().render(data)


def test_encoded_representations_parse_as_drf_renders_them():
    encoded = encode_representation(VALUES)
    assert json.loads(encoded) == json.loads(drf(VALUES))


def test_line_separators_are_escaped_as_drf_does():
    encoded = encode_representation({"text": "a\u2028b\u2029c"})
    assert b"\\u2028" in encoded and b"\\u2029" in encoded
    assert encoded == drf({"text": "a\u2028b\u2029c"})


def test_plain_values_are_encoded_like_drf_byte_for_byte():
    data = {"id": 1, "name": "Question 0?", "when": "2024-05-01T12:00:00Z", "ids": [1, 2]}
    assert encode_representation(data) == drf(data)


def test_values_no_json_can_hold_are_an_error():
    with pytest.raises(TypeError):
        encode_representation({"x": object()})


def chunks(*rows) -> list[bytes]:
    return [encode_representation(row) for row in rows]


def test_the_renderer_splices_items_into_an_envelope():
    items = RenderedItems(chunks({"id": 1}, {"id": 2, "s": "\u00e9"}))
    envelope = {"count": 2, "next": 'http://x/?q="@@instcache-', "results": items}
    body = SplicingJSONRenderer().render(envelope)
    assert json.loads(body) == {
        "count": 2,
        "next": 'http://x/?q="@@instcache-',
        "results": [{"id": 1}, {"id": 2, "s": "\u00e9"}],
    }
    assert b'[{"id":1},{"id":2,"s":"\xc3\xa9"}]' in body


def test_the_renderer_writes_lone_placeholders_and_plain_data():
    renderer = SplicingJSONRenderer()
    assert renderer.render(RenderedItems(chunks({"a": 1}))) == b'[{"a":1}]'
    assert renderer.render(RenderedItems([])) == b"[]"
    assert renderer.render(RenderedObject(b'{"a":1}')) == b'{"a":1}'
    assert renderer.render({"plain": [1, 2]}) == drf({"plain": [1, 2]})
    assert renderer.render(None) == b""


def test_indented_output_decodes_and_lets_drf_pretty_print():
    items = RenderedItems(chunks({"id": 1}))
    body = SplicingJSONRenderer().render({"results": items}, "application/json; indent=2", {})
    assert body == JSONRenderer().render({"results": [{"id": 1}]}, "application/json; indent=2")
    assert json.loads(body) == {"results": [{"id": 1}]}
    assert b'\n  "results"' in body


def test_placeholders_behave_as_data_for_python_code_and_drf_encoders():
    items = RenderedItems(chunks({"id": 1}, {"id": 2}))
    assert len(items) == 2 and items[1] == {"id": 2} and list(items) == [{"id": 1}, {"id": 2}]
    assert items == [{"id": 1}, {"id": 2}]
    one = RenderedObject(b'{"id": 3}')
    assert one["id"] == 3 and dict(one) == {"id": 3} and one == {"id": 3}
    # Another renderer's DRF encoder turns them into a list and a dict.
    assert json.loads(drf({"results": items, "one": one})) == {
        "results": [{"id": 1}, {"id": 2}],
        "one": {"id": 3},
    }
    with pytest.raises(TypeError):
        json.dumps(items)  # never silently "[]"


def test_only_drfs_own_json_renderer_is_swapped():
    class CamelCaseRenderer(JSONRenderer):
        pass

    renderers = [JSONRenderer(), CamelCaseRenderer(), BrowsableAPIRenderer()]
    swapped = with_splicing(renderers)
    assert type(swapped[0]) is SplicingJSONRenderer
    assert swapped[1:] == renderers[1:]


@pytest.mark.parametrize(
    "envelope",
    [
        {"count": 3, "next": None, "previous": "http://x/?page=1", "ok": True},
        {"next": "http://x/?q=\u2028\u00e9\U0001f600&page=2", "count": 0},
        {"count": 1.5, "links": {"next": None}, "n": -1},  # not simple: the json path
        {1: "int key", "count": 2},
    ],
)
def test_envelopes_are_written_as_drf_writes_them(envelope):
    items = RenderedItems(chunks({"id": 1, "s": "\u2029"}, {"id": 2}))
    body = SplicingJSONRenderer().render({**envelope, "results": items})
    assert body == drf({**envelope, "results": [{"id": 1, "s": "\u2029"}, {"id": 2}]})
