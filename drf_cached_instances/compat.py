"""The helpers the original ``compat`` module offered, from Django itself."""

from django.apps import apps
from django.utils.dateparse import parse_duration

get_model = apps.get_model

__all__ = ["get_model", "parse_duration"]
