"""URLs of the sample project.

The cached API (instance cache) under ``/api/``, the fast path (rendered JSON per
instance) under ``/api/fast/``, and plain DRF under ``/api/plain/``. The hyperlinked
``polls`` serializer links to the ``/api/`` endpoints, so its plain and fast versions
answer the same URLs.
"""

from __future__ import annotations

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from example.polls import views

cached = DefaultRouter()
cached.register("users", views.UserViewSet, basename="user")
cached.register("questions", views.QuestionViewSet, basename="question")
cached.register("choices", views.ChoiceViewSet, basename="choice")

plain = DefaultRouter()
plain.root_view_name = "plain-api-root"
plain.register("users", views.PlainUserViewSet, basename="plain-user")
plain.register("questions", views.PlainQuestionViewSet, basename="plain-question")
plain.register("choices", views.PlainChoiceViewSet, basename="plain-choice")
plain.register("polls", views.PlainPollViewSet, basename="plain-poll")

fast = DefaultRouter()
fast.root_view_name = "fast-api-root"
fast.register("users", views.FastUserViewSet, basename="fast-user")
fast.register("questions", views.FastQuestionViewSet, basename="fast-question")
fast.register("choices", views.FastChoiceViewSet, basename="fast-choice")
fast.register("polls", views.FastPollViewSet, basename="fast-poll")

# The longer prefixes first: Django tries patterns in order, and "api/" would otherwise
# try each of its routes on every /api/fast/ and /api/plain/ request before failing.
urlpatterns = [
    path("api/plain/", include(plain.urls)),
    path("api/fast/", include(fast.urls)),
    path("api/", include(cached.urls)),
]
