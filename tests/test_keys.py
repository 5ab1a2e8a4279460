"""The safe-key rule shared by every backend."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drf_instcache.keys import MAX_KEY_LENGTH, is_safe, prefixed, safe_key, validate_prefix


def test_safe_keys_are_kept_as_they_are():
    assert safe_key("polls_default_question_12") == "polls_default_question_12"
    assert safe_key("k" * MAX_KEY_LENGTH) == "k" * MAX_KEY_LENGTH


@pytest.mark.parametrize(
    "key", ["k" * (MAX_KEY_LENGTH + 1), "a b", "tab\t", "nul\x00", "é", "", "has#hash"]
)
def test_unsafe_keys_are_hashed_with_a_readable_head(key):
    replaced = safe_key(key)
    assert is_safe(replaced)
    assert "#" in replaced
    readable = "".join(char if 0x21 <= ord(char) <= 0x7E else "_" for char in key)
    assert replaced.rsplit("#", 1)[0] == readable[:80]


@given(st.text(max_size=600))
def test_every_key_maps_to_a_safe_stable_key(key):
    replaced = safe_key(key)
    assert is_safe(replaced)
    assert len(replaced.encode()) <= MAX_KEY_LENGTH
    assert safe_key(key) == replaced


@given(st.text(max_size=400), st.text(max_size=400))
def test_distinct_keys_stay_distinct(first, second):
    if first != second:
        assert safe_key(first) != safe_key(second)


def test_hashed_output_is_a_fixed_point():
    once = safe_key("with space")
    # A hashed key contains '#', so it is hashed again rather than mistaken for a plain key.
    assert safe_key(once) != once


def test_prefixed_keys_keep_the_namespace_readable():
    assert prefixed("api", "question_1") == "api:question_1"
    assert prefixed("api", "x" * 500).startswith("api:xxx")


@pytest.mark.parametrize("prefix", ["", "a b", "a:b", "a*", "x" * 65, "é"])
def test_bad_prefixes_are_refused(prefix):
    with pytest.raises(ValueError, match="KEY_PREFIX"):
        validate_prefix(prefix)


def test_non_string_keys_are_a_type_error():
    with pytest.raises(TypeError):
        safe_key(12)  # type: ignore[arg-type]
