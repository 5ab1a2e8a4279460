"""Views the fast path cannot cache answer as plain DRF, with one warning naming why."""

from __future__ import annotations

import logging

import pytest
from django.urls import path
from rest_framework import generics, serializers
from rest_framework.pagination import PageNumberPagination

from drf_instcache.mixins import CachedViewMixin


class NumberSerializer(serializers.BaseSerializer):
    def to_representation(self, instance):
        return {"n": instance}


class Pages(PageNumberPagination):
    page_size = 2


class Numbers(CachedViewMixin, generics.ListAPIView):
    cache_rendered = True
    pagination_class = Pages


class PlainNumbers(generics.ListAPIView):
    pagination_class = Pages


kwargs = {"queryset": range(1, 6), "serializer_class": NumberSerializer}
urlpatterns = [
    path("fast/", Numbers.as_view(**kwargs)),
    path("plain/", PlainNumbers.as_view(**kwargs)),
]


@pytest.fixture(autouse=True)
def numbers_urls(settings) -> None:
    settings.ROOT_URLCONF = __name__


def test_a_queryset_given_to_as_view_that_is_not_a_queryset_is_served_plainly(api, caplog):
    with caplog.at_level(logging.WARNING, logger="drf_instcache.fastview"):
        for query in ("", "?page=2", "?page=3", "?page=9"):
            fast, plain = api.get(f"/fast/{query}"), api.get(f"/plain/{query}")
            assert fast.status_code == plain.status_code
            assert fast.content.replace(b"/fast/", b"/plain/") == plain.content
    warned = [r.getMessage() for r in caplog.records if "Numbers" in r.getMessage()]
    assert len(warned) == 1 and "its queryset is a range, not a QuerySet" in warned[0]
