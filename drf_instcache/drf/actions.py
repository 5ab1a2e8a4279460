"""View actions that take the fast path when the view opts in, and exist only if DRF's do.

:class:`~drf_instcache.mixins.CachedViewMixin` must answer ``list`` and ``retrieve``
from rendered entries when ``cache_rendered = True``. Defining plain ``list`` and
``retrieve`` methods on the mixin would give *every* view using it those actions, and
DRF's routers route whatever a viewset has: a viewset with only ``RetrieveModelMixin``
would suddenly get a broken list route. So the mixin holds :class:`FastAction`
descriptors instead: an attribute lookup finds the next implementation in the view's
MRO (DRF's ``ListModelMixin.list``, or a parent's override) and raises
``AttributeError`` when there is none, exactly as if the mixin did not define it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class FastAction:
    """``list``/``retrieve`` of the mixin: the fast path, or the next class's action."""

    def __init__(self, fast: Callable[..., Any]) -> None:
        self.fast = fast
        self.name = ""
        self.owner: type | None = None
        self._next_of: dict[type, Any] = {}
        """The next implementation per view class (found once: every request looks)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.owner = owner
        self.name = name

    def _next(self, cls: type) -> Any:
        try:
            return self._next_of[cls]
        except KeyError:
            found = self._next_of[cls] = self._find_next(cls)
            return found

    def _find_next(self, cls: type) -> Any:
        mro = cls.__mro__
        for klass in mro[mro.index(self.owner) + 1 :] if self.owner in mro else ():
            if self.name in vars(klass):
                return vars(klass)[self.name]
        raise AttributeError(f"{cls.__name__!r} object has no attribute {self.name!r}")

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        cls = owner if owner is not None else type(instance)
        base = self._next(cls)
        if instance is None:
            return base
        bound = base.__get__(instance, cls)
        if not getattr(cls, "cache_rendered", False):
            return bound
        fast = self.fast

        def action(request: Any, *args: Any, **kwargs: Any) -> Any:
            if instance.serves_rendered():
                return fast(instance, bound, request, *args, **kwargs)
            return bound(request, *args, **kwargs)

        # What functools.wraps would copy, minus its cost (this runs on every request).
        action.__name__ = action.__qualname__ = self.name
        action.__doc__ = bound.__doc__
        action.__wrapped__ = bound  # type: ignore[attr-defined]
        return action
