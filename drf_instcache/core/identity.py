"""Identities of long-lived objects (backends, plans) for per-process memos.

``id()`` is reused once an object is freed: a memo keyed by the ``id()`` of a backend
that settings replaced can hand its state to the next backend built at the same address
(a cold plan then looks warm). A serial number is never reused.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

_ATTRIBUTE = "_drf_instcache_serial"
_numbers = itertools.count(1)
_lock = threading.Lock()


def serial(obj: Any) -> int:
    """A number no other object of this process is given (``id()`` without ``__dict__``).

    Read from the object's own ``__dict__``, so a wrapper forwarding attributes to the
    backend it wraps (``__getattr__``) keeps an identity of its own.
    """
    try:
        namespace = vars(obj)
    except TypeError:
        return id(obj)
    number = namespace.get(_ATTRIBUTE)
    if number is None:
        with _lock:
            number = namespace.setdefault(_ATTRIBUTE, next(_numbers))
    return number
