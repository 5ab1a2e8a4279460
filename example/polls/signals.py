"""Keep the poll API's cache current: imported by ``PollsConfig.ready()``.

Connecting here (rather than in ``urls.py``) means writes from anywhere, the shell, a
management command or a Celery worker, refresh the cache, not only writes made after the
first request loaded the URLconf.
"""

from __future__ import annotations

from django.contrib.auth.models import User

from drf_instcache import bulk, rendered, signals
from example.polls.cache import PollCache
from example.polls.views import FAST_VIEWSETS

signals.connect(PollCache)
rendered.connect(*FAST_VIEWSETS)
# auth.User's manager cannot be edited: give its querysets invalidating bulk writes.
bulk.install(User)
