"""Field converters as drf-cached-instances documented them: methods a subclass overrides.

Also the 0.3.3 behaviour: date, datetime and duration *strings* are parsed, and a string
that is not one converts to None instead of raising.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth.models import User
from django.test import SimpleTestCase

from drf_cached_instances.cache import BaseCache
from drf_cached_instances.models import PkOnlyModel, PkOnlyQueryset


class TestFieldConverters(SimpleTestCase):
    """The built-in converter methods of an unmodified BaseCache."""

    def setUp(self) -> None:
        self.cache = BaseCache()

    def round_trip(self, code: str, value: Any) -> Any:
        converted = getattr(self.cache, f"field_{code}_to_json")(value)
        return getattr(self.cache, f"field_{code}_from_json")(converted)

    def test_date(self) -> None:
        self.assertEqual(dt.date(2014, 9, 22), self.round_trip("date", dt.date(2014, 9, 22)))
        self.assertIsNone(self.cache.field_date_to_json(None))

    def test_datetime_with_and_without_microseconds(self) -> None:
        for value in (
            dt.datetime(2014, 9, 22, 8, 52, 0, 123456, dt.UTC),
            dt.datetime(2014, 9, 22, 8, 52, 0, 0, dt.UTC),
        ):
            self.assertEqual(value, self.round_trip("datetime", value))

    def test_datetime_without_timezone_is_utc(self) -> None:
        out = self.round_trip("datetime", dt.datetime(2014, 9, 22, 8, 52, 0, 123456))
        self.assertEqual(dt.datetime(2014, 9, 22, 8, 52, 0, 123456, dt.UTC), out)

    def test_timedelta(self) -> None:
        for value in (dt.timedelta(seconds=2), dt.timedelta(days=3, microseconds=7)):
            self.assertEqual(value, self.round_trip("timedelta", value))

    def test_pklist(self) -> None:
        converted = self.cache.field_pklist_to_json(User, (1, 2, 3))
        out = self.cache.field_pklist_from_json(converted)
        self.assertIsInstance(out, PkOnlyQueryset)
        self.assertEqual(User, out.model)
        self.assertEqual([1, 2, 3], list(out.pks))

    def test_pk(self) -> None:
        out = self.cache.field_pk_from_json(self.cache.field_pk_to_json(User, 1))
        self.assertIsInstance(out, PkOnlyModel)
        self.assertEqual((User, 1), (out.model, out.pk))

    def test_values_in_the_original_projects_layout_are_read(self) -> None:
        self.assertEqual(dt.date(2014, 9, 22), self.cache.field_date_from_json([2014, 9, 22]))
        self.assertEqual(
            dt.datetime(2014, 9, 22, 8, 52, 0, 123456, dt.UTC),
            self.cache.field_datetime_from_json("1411375920.123456"),
        )
        self.assertEqual(
            dt.datetime(2014, 9, 22, 8, 52, tzinfo=dt.UTC),
            self.cache.field_datetime_from_json(1411375920),
        )
        self.assertEqual(dt.timedelta(seconds=2.5), self.cache.field_timedelta_from_json("2.5"))
        pks = self.cache.field_pklist_from_json({"app": "auth", "model": "user", "pks": [1]})
        self.assertEqual((User, [1]), (pks.model, list(pks.pks)))
        pk = self.cache.field_pk_from_json({"app": "auth", "model": "user", "pk": 4})
        self.assertEqual((User, 4), (pk.model, pk.pk))


class TestStringsAreParsed(SimpleTestCase):
    """field_to_json given the string form of a date, datetime or duration."""

    def setUp(self) -> None:
        self.cache = BaseCache()

    def from_string(self, code: str, text: str) -> Any:
        key, value = self.cache.field_to_json(code, "f", text)
        return self.cache.field_from_json(key, value)[1]

    def test_date_string(self) -> None:
        self.assertEqual(dt.date(2014, 9, 22), self.from_string("Date", "2014-09-22"))

    def test_datetime_string(self) -> None:
        self.assertEqual(
            dt.datetime(2014, 9, 22, 8, 52, 0, 123456, dt.UTC),
            self.from_string("DateTime", "2014-09-22T08:52:00.123456Z"),
        )
        self.assertEqual(
            dt.datetime(2014, 9, 22, 6, 52, tzinfo=dt.UTC),
            self.from_string("DateTime", "2014-09-22 08:52:00+02:00"),
        )

    def test_duration_strings(self) -> None:
        self.assertEqual(
            dt.timedelta(days=1, hours=2, minutes=3, seconds=4.5),
            self.from_string("TimeDelta", "1 02:03:04.5"),
        )
        self.assertEqual(dt.timedelta(days=1, hours=2), self.from_string("TimeDelta", "P1DT2H"))

    def test_strings_that_are_not_dates_give_none(self) -> None:
        for code in ("Date", "DateTime", "TimeDelta"):
            for text in ("not a date", "", "2014-02-30"):
                with self.subTest(code=code, text=text):
                    self.assertEqual(("f:" + code, None), self.cache.field_to_json(code, "f", text))


class ShoutingDates(BaseCache):
    """A subclass overriding the documented extension points."""

    def field_date_to_json(self, value: Any) -> Any:
        return ["custom", value.isoformat()]

    def field_date_from_json(self, value: Any) -> Any:
        return dt.date.fromisoformat(value[1]) + dt.timedelta(days=1)

    def field_pk_to_json(self, model: Any, pk: Any) -> Any:
        return {"model": model._meta.label_lower, "pk": pk * 10}


class TestOverridesAreUsed(SimpleTestCase):
    def test_field_to_json_and_from_json_dispatch_to_overridden_methods(self) -> None:
        cache = ShoutingDates()
        key, value = cache.field_to_json("Date", "day", dt.date(2020, 1, 1))
        self.assertEqual(("day:Date", ["custom", "2020-01-01"]), (key, value))
        self.assertEqual(("day", dt.date(2020, 1, 2)), cache.field_from_json(key, value))
        self.assertEqual(
            ("owner:PK", {"model": "auth.user", "pk": 30}),
            cache.field_to_json("PK", "owner", model=User, pk=3),
        )
        native = cache.from_cached({"day:Date": ["custom", "2020-01-01"]})
        self.assertEqual({"day": dt.date(2020, 1, 2)}, native)
