"""Run in another process (multiprocessing 'spawn'): write through its own backend, exit.

Kept apart from the test module so the child imports nothing but this and the adapter.
"""

from __future__ import annotations


def write_and_exit(url: str, key_prefix: str, items: dict[str, bytes], delete: list[str]) -> None:
    from drf_instcache.backends.redis import RedisBackend

    backend = RedisBackend(url, key_prefix=key_prefix)
    try:
        if items:
            backend.set_many(items)
        if delete:
            backend.delete_many(delete)
    finally:
        backend.close()
