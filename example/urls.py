"""URLs of the sample project: the cached API under ``/api/``, plain DRF under ``/api/plain/``."""

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

urlpatterns = [
    path("api/plain/", include(plain.urls)),
    path("api/", include(cached.urls)),
]
