"""Many-to-many sides are told apart the same way on every supported Django.

Django 6.0 made ``ManyToManyField.concrete`` False; code that used ``concrete`` to find
the declared side broke at start-up (signals) or lost forward m2m dependencies.
"""

from __future__ import annotations

from django.contrib.auth.models import User

from drf_instcache.dependencies import M2M, relation_step
from drf_instcache.invalidation.instances import m2m_relations
from drf_instcache.relations import forward_many_to_many, m2m_field, m2m_through
from example.polls.models import Choice

VOTERS_THROUGH = Choice.voters.through


def test_both_sides_name_the_same_field_and_through_model() -> None:
    forward = Choice._meta.get_field("voters")
    reverse = next(
        f for f in User._meta.get_fields() if f.related_model is Choice and f.many_to_many
    )
    assert forward_many_to_many(forward) and not forward_many_to_many(reverse)
    assert m2m_field(forward) is forward and m2m_field(reverse) is forward
    assert m2m_through(forward) is VOTERS_THROUGH and m2m_through(reverse) is VOTERS_THROUGH


def test_m2m_receivers_are_keyed_by_through_model_from_either_side() -> None:
    relations = m2m_relations([Choice, User])
    assert relations[VOTERS_THROUGH] is Choice._meta.get_field("voters")


def test_a_forward_m2m_is_a_dependency_step_with_its_through_model() -> None:
    step = relation_step(Choice, "voters")
    assert step is not None and step.kind == M2M
    assert step.through is VOTERS_THROUGH and step.forward_m2m
    back = relation_step(User, "votes")
    assert back is not None and back.through is VOTERS_THROUGH and not back.forward_m2m
