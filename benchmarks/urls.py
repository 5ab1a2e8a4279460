"""URL conf of the benchmark servers: the example API plus the whole-response endpoints.

``/api/plain/``, ``/api/`` and ``/api/fast/`` come from the example project unchanged
(the settings cache the fast path's list queries); ``/api/fast-live/`` is the fast path
asking the database for every list's count and keys, and ``/api/whole/`` serves the same
questions with whole responses cached by drf-extensions (:mod:`benchmarks.views`);
``/api/floor/`` answers pre-rendered bytes through DRF's cycle (the near-cache workload's
floor).
"""

from __future__ import annotations

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from benchmarks.views import (
    FloorView,
    LiveListsQuestionViewSet,
    RetrieveFloorView,
    WholeResponseQuestionViewSet,
)
from example.urls import urlpatterns as example_urlpatterns

whole = SimpleRouter()
whole.register("questions", WholeResponseQuestionViewSet, basename="whole-question")
live = SimpleRouter()
live.register("questions", LiveListsQuestionViewSet, basename="fast-live-question")

urlpatterns = [
    path("api/floor/", FloorView.as_view(), name="floor"),
    path("api/floor/retrieve/", RetrieveFloorView.as_view(), name="floor-retrieve"),
    path("api/whole/", include(whole.urls)),
    path("api/fast-live/", include(live.urls)),
    *example_urlpatterns,
]
