"""Field converters: every type survives the trip to the cache and back, exactly.

Each round trip goes through a real codec (json, orjson, msgpack) as well, since a
representation that one codec cannot hold (a 65-bit integer, a float for a Decimal)
would break only in production with that codec.
"""

from __future__ import annotations

import datetime as dt
import decimal
import fractions
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drf_instcache.cache import BaseCache
from drf_instcache.codecs import CODEC_CHOICES, get_codec
from drf_instcache.core import fields
from drf_instcache.fields import UnknownFieldType
from drf_instcache.models import PkOnlyModel, PkOnlyQueryset
from example.polls.models import Choice, Question

CACHE = BaseCache()


def round_trip(type_code: str, value: Any, codec_name: str = "json") -> Any:
    """Convert, encode, decode and convert back, as a cache write and read would."""
    key, json_value = CACHE.field_to_json(type_code, "field", value)
    assert key == f"field:{type_code}"
    codec = get_codec(codec_name)
    decoded = codec.decode(codec.encode({key: json_value}))
    name, python_value = CACHE.field_from_json(key, decoded[key])
    assert name == "field"
    return python_value


codecs = st.sampled_from(CODEC_CHOICES)
offsets = st.integers(min_value=-23 * 60, max_value=23 * 60).map(
    lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))
)
safe_datetimes = st.datetimes(
    min_value=dt.datetime(2, 1, 1), max_value=dt.datetime(9998, 12, 31), timezones=offsets
)


@given(value=safe_datetimes, codec_name=codecs)
def test_aware_datetime_comes_back_as_the_same_instant_in_utc(value, codec_name):
    result = round_trip("DateTime", value, codec_name)
    assert result == value
    assert result.utcoffset() == dt.timedelta(0)
    assert result.microsecond == value.astimezone(dt.UTC).microsecond


@given(value=st.datetimes(min_value=dt.datetime(1, 1, 2)), codec_name=codecs)
def test_naive_datetime_is_taken_as_utc(value, codec_name):
    assert round_trip("DateTime", value, codec_name) == value.replace(tzinfo=dt.UTC)


@given(value=st.dates(), codec_name=codecs)
def test_date_round_trip(value, codec_name):
    assert round_trip("Date", value, codec_name) == value


def test_date_reads_the_original_projects_triples():
    assert CACHE.field_from_json("day:Date", [2024, 2, 29]) == ("day", dt.date(2024, 2, 29))


@given(value=st.timedeltas(), codec_name=codecs)
def test_timedelta_round_trip_is_exact_over_the_whole_range(value, codec_name):
    assert round_trip("TimeDelta", value, codec_name) == value


@given(value=st.decimals(allow_nan=False, allow_infinity=True), codec_name=codecs)
def test_decimal_round_trip_keeps_every_digit(value, codec_name):
    result = round_trip("Decimal", value, codec_name)
    assert isinstance(result, decimal.Decimal)
    assert result.as_tuple() == value.as_tuple()  # 1.10 stays 1.10, not 1.1


def test_decimal_nan_survives():
    assert round_trip("Decimal", decimal.Decimal("NaN")).is_nan()


@given(value=st.uuids(), codec_name=codecs)
def test_uuid_round_trip(value, codec_name):
    assert round_trip("UUID", value, codec_name) == value


@pytest.mark.parametrize("type_code", ["Date", "DateTime", "TimeDelta", "Decimal", "UUID", "PK"])
def test_none_is_allowed(type_code):
    if type_code == "PK":
        key, stored = CACHE.field_to_json("PK", "field", model=Question, pk=None)
    else:
        key, stored = CACHE.field_to_json(type_code, "field", None)
    assert stored is None
    assert CACHE.field_from_json(key, stored) == ("field", None)


@pytest.mark.parametrize("codec_name", CODEC_CHOICES)
def test_pk_becomes_a_pk_only_model(codec_name):
    key, stored = CACHE.field_to_json("PK", "question", model=Question, pk=7)
    codec = get_codec(codec_name)
    name, related = CACHE.field_from_json(key, codec.decode(codec.encode({key: stored}))[key])
    assert name == "question"
    assert isinstance(related, PkOnlyModel)
    assert (related.model, related.pk, related.id) == (Question, 7, 7)
    assert related.cache is CACHE


def test_pk_accepts_a_model_label():
    _, stored = CACHE.field_to_json("PK", "question", model="polls.Question", pk=3)
    assert CACHE.field_from_json("question:PK", stored)[1] == PkOnlyModel(None, Question, 3)


@pytest.mark.parametrize("codec_name", CODEC_CHOICES)
def test_pklist_becomes_a_pk_only_queryset(codec_name):
    key, stored = CACHE.field_to_json("PKList", "choices", model=Choice, pks=(3, 1, 2))
    codec = get_codec(codec_name)
    name, related = CACHE.field_from_json(key, codec.decode(codec.encode({key: stored}))[key])
    assert name == "choices"
    assert isinstance(related, PkOnlyQueryset)
    assert related.model is Choice
    assert related.values_list("pk", flat=True) == [3, 1, 2]


def test_unknown_type_code_is_a_clear_error():
    with pytest.raises(UnknownFieldType, match=r"'Colour'.*DateTime"):
        CACHE.field_to_json("Colour", "shade", "red")
    with pytest.raises(UnknownFieldType, match="'Colour'"):
        CACHE.field_from_json("shade:Colour", "red")


def test_type_codes_are_case_insensitive():
    key, stored = CACHE.field_to_json("datetime", "when", dt.datetime(2024, 1, 1))
    assert key == "when:datetime"
    assert CACHE.field_from_json(key, stored)[1] == dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize("bad_key", ["a:b", "", 3])
def test_field_names_cannot_hold_the_separator(bad_key):
    with pytest.raises(ValueError, match="field name"):
        CACHE.field_to_json("Date", bad_key, dt.date.today())


def test_from_json_needs_a_typed_key():
    with pytest.raises(ValueError, match="not a 'name:Type' key"):
        CACHE.field_from_json("plain", 1)


class ShoutingCache(BaseCache):
    """A project type added by methods, and a built-in one overridden."""

    def field_shout_to_json(self, text: str) -> str:
        return text.upper()

    def field_shout_from_json(self, value: str) -> str:
        return value + "!"

    def field_date_to_json(self, day: dt.date) -> int:
        return day.toordinal()

    def field_date_from_json(self, value: int) -> dt.date:
        return dt.date.fromordinal(value)


def test_cache_class_methods_add_types_and_win_over_the_registry():
    cache = ShoutingCache()
    assert cache.field_to_json("Shout", "word", "hey") == ("word:Shout", "HEY")
    assert cache.field_from_json("word:Shout", "HEY") == ("word", "HEY!")
    day = dt.date(2020, 2, 2)
    assert cache.field_to_json("Date", "day", day) == ("day:Date", day.toordinal())
    assert cache.field_from_json("day:Date", day.toordinal()) == ("day", day)


def test_registered_converters_serve_every_cache_class(monkeypatch):
    monkeypatch.setattr(fields, "_REGISTRY", dict(fields._REGISTRY))
    fields.register_converter(
        "Fraction",
        lambda cache, value: [value.numerator, value.denominator],
        lambda cache, value: fractions.Fraction(*value),
    )
    assert round_trip("Fraction", fractions.Fraction(22, 7)) == fractions.Fraction(22, 7)
    assert "Fraction" in fields.known_codes()


@pytest.mark.parametrize("code", ["", "a:b", "two words"])
def test_register_converter_refuses_bad_codes(code):
    with pytest.raises(ValueError, match="type code"):
        fields.register_converter(code, lambda cache, v: v, lambda cache, v: v)


def test_uuid_given_as_text_is_normalised():
    text = "12345678123456781234567812345678"
    assert CACHE.field_to_json("UUID", "id", text)[1] == str(uuid.UUID(text))
