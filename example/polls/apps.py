"""App configuration of the sample poll app."""

from __future__ import annotations

import importlib.util

from django.apps import AppConfig


class PollsConfig(AppConfig):
    """The sample poll app, installed as ``example.polls`` with the label ``polls``."""

    name = "example.polls"
    label = "polls"
    verbose_name = "Polls (drf-instcache example)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Connect the cache-updating signal receivers, when the app defines them.

        The receivers live in ``example.polls.signals`` so the models stay free of cache
        wiring; importing that module is what connects them.
        """
        if importlib.util.find_spec(f"{self.name}.signals") is not None:
            importlib.import_module(f"{self.name}.signals")
