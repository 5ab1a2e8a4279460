"""Codecs: exact round trips, and foreign or damaged bytes read as a clean miss."""

from __future__ import annotations

import sys

import pytest
from django.test import override_settings
from hypothesis import given
from hypothesis import strategies as st

from drf_instcache.cache import BaseCache
from drf_instcache.codecs import CODEC_CHOICES, get_codec, resolve_codec
from drf_instcache.core import codecs
from drf_instcache.exceptions import CorruptValue, ImproperlyConfigured

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)


@pytest.mark.parametrize("name", CODEC_CHOICES)
@given(value=st.dictionaries(st.text(max_size=10), json_values, max_size=8))
def test_round_trip(name, value):
    codec = get_codec(name)
    encoded = codec.encode(value)
    assert isinstance(encoded, bytes)
    assert encoded.startswith(codec.marker)
    assert codec.decode(encoded) == value


@pytest.mark.parametrize("writer", CODEC_CHOICES)
@pytest.mark.parametrize("reader", CODEC_CHOICES)
def test_a_value_written_by_another_codec_is_corrupt_not_a_crash(writer, reader):
    value = {"id": 1, "name": "x"}
    encoded = get_codec(writer).encode(value)
    if writer == reader:
        assert get_codec(reader).decode(encoded) == value
    else:
        with pytest.raises(CorruptValue, match="marker"):
            get_codec(reader).decode(encoded)


@pytest.mark.parametrize("name", CODEC_CHOICES)
@pytest.mark.parametrize(
    "garbage",
    [b"", b"\x00\xff\xfe", b"not ours at all", b'{"id": 1}', b"\x80\x04\x95pickle"],
)
def test_bytes_we_did_not_write_are_corrupt(name, garbage):
    with pytest.raises(CorruptValue):
        get_codec(name).decode(garbage)


@pytest.mark.parametrize("name", CODEC_CHOICES)
def test_truncated_value_is_corrupt(name):
    codec = get_codec(name)
    encoded = codec.encode({"text": "a long enough value", "list": [1, 2, 3]})
    with pytest.raises(CorruptValue, match=name):
        codec.decode(encoded[: len(encoded) // 2])


@pytest.mark.parametrize("name", CODEC_CHOICES)
def test_unencodable_value_names_the_fix(name):
    with pytest.raises(TypeError, match="field_to_json"):
        get_codec(name).encode({"when": object()})


def test_unknown_codec_names_the_setting_and_the_choices():
    with pytest.raises(ImproperlyConfigured, match=r"DRF_INSTCACHE_CODEC.*'yaml'.*json, orjson"):
        get_codec("yaml")


@pytest.mark.parametrize("library", ["orjson", "msgpack"])
def test_missing_library_names_the_fast_extra(monkeypatch, library):
    codecs._build_codec.cache_clear()
    monkeypatch.setitem(sys.modules, library, None)  # makes `import <library>` fail
    try:
        with pytest.raises(ImproperlyConfigured, match=r"drf-instcache\[fast\]"):
            get_codec(library)
    finally:
        codecs._build_codec.cache_clear()


def test_codec_follows_the_setting():
    cache = BaseCache()
    assert cache.codec.name == "json"
    with override_settings(DRF_INSTCACHE_CODEC="msgpack"):
        assert cache.codec.name == "msgpack"
    with override_settings(DRF_INSTCACHE_CODEC="bogus"), pytest.raises(ImproperlyConfigured):
        _ = cache.codec


def test_explicit_codec_wins_over_the_setting():
    with override_settings(DRF_INSTCACHE_CODEC="msgpack"):
        assert BaseCache(codec="orjson").codec.name == "orjson"
    assert resolve_codec(get_codec("msgpack")) is get_codec("msgpack")
