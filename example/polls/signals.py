"""Keep the poll API's cache current: imported by ``PollsConfig.ready()``.

Connecting here (rather than in ``urls.py``) means writes from anywhere, the shell, a
management command or a Celery worker, refresh the cache, not only writes made after the
first request loaded the URLconf.
"""

from __future__ import annotations

from drf_instcache import rendered, signals
from example.polls.cache import PollCache
from example.polls.views import FAST_VIEWSETS

signals.connect(PollCache)
rendered.connect(*FAST_VIEWSETS)
