"""The example's URLs plus django-debug-toolbar's (for the panel test).

Included directly: ``debug_toolbar_urls()`` gives nothing unless ``DEBUG`` is on, and
tests run with ``DEBUG = False``.
"""

from __future__ import annotations

from django.urls import include, path

from example.urls import urlpatterns as example_urlpatterns

urlpatterns = [*example_urlpatterns, path("__debug__/", include("debug_toolbar.urls"))]
