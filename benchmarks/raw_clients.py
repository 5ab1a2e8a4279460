"""The same three operations written directly against each client library.

This is the baseline the adapters are measured against: what a developer would write by
hand with redis-py, pymemcache, diskcache or Django's cache API to fetch, store and
delete a batch of byte values. Each raw client sends the same server commands the
adapter sends where the client library offers it (MGET / pipelined ``SET PX`` / UNLINK on
Redis, multi-get / multi-set with replies / multi-delete on Memcached, ``get_many`` /
``set_many`` / ``delete_many`` on Django), so the adapter/raw ratio isolates what the
library adds in Python: key namespacing and the safe-key rule, argument checks, error
translation and mapping the reply back to the caller's keys. diskcache has no batch
API: its baseline is a loop of ``get`` (writes in one ``transact()``), and the adapter,
which reads with one ``SELECT ... IN`` per shard, can beat it.

Raw clients keep their data under their own ``raw:`` keys (or directory) on the same
server, so they never read what the adapter wrote and vice versa.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

RAW_PREFIX = "raw:"
"""Namespace of the raw clients' keys on a shared server."""


@dataclass
class RawClient:
    """Batch operations on one client library; ``close`` releases its connections."""

    get_many: Callable[[Sequence[str]], Any]
    set_many: Callable[[Mapping[str, bytes]], Any]
    delete_many: Callable[[Sequence[str]], Any]
    close: Callable[[], Any]
    description: str


def redis_raw(url: str, timeout: float) -> RawClient:
    """redis-py (hiredis parser when installed): MGET, pipelined SET PX, UNLINK."""
    import redis

    client = redis.Redis.from_url(url)
    milliseconds = max(1, math.ceil(timeout * 1000))

    def set_many(items: Mapping[str, bytes]) -> None:
        pipeline = client.pipeline(transaction=False)
        for key, value in items.items():
            pipeline.set(key, value, px=milliseconds)
        pipeline.execute()

    def delete_many(keys: Sequence[str]) -> None:
        client.unlink(*keys)

    return RawClient(
        get_many=client.mget,
        set_many=set_many,
        delete_many=delete_many,
        close=client.connection_pool.disconnect,
        description=f"redis-py {redis.__version__} Redis.mget / pipeline SET / unlink",
    )


def memcached_raw(host: str, port: int, timeout: float) -> RawClient:
    """pymemcache Client: get_many, set_many and delete_many, waiting for replies.

    ``TCP_NODELAY`` is set as the adapter sets it: without it Nagle's algorithm can hold a
    pipelined request back for a delayed ACK, and the baseline would measure that.
    """
    import pymemcache
    from pymemcache.client.base import Client

    client = Client((host, port), default_noreply=False, no_delay=True)
    expire = max(1, math.ceil(timeout))

    def set_many(items: Mapping[str, bytes]) -> None:
        client.set_many(items, expire=expire, noreply=False)

    def delete_many(keys: Sequence[str]) -> None:
        client.delete_many(keys, noreply=False)

    return RawClient(
        get_many=client.get_many,
        set_many=set_many,
        delete_many=delete_many,
        close=client.close,
        description=f"pymemcache {pymemcache.__version__} Client.get_many / set_many / delete_many",
    )


def disk_raw(directory: str, timeout: float) -> RawClient:
    """diskcache.Cache: get() per key; set() or delete() per key in one transaction."""
    import diskcache

    cache = diskcache.Cache(directory)

    def get_many(keys: Sequence[str]) -> dict[str, bytes]:
        # diskcache has no multi-get; reads need no transaction (it would take the
        # write lock), so a loop of get() is what one writes by hand.
        found = {}
        for key in keys:
            value = cache.get(key)
            if value is not None:
                found[key] = value
        return found

    def set_many(items: Mapping[str, bytes]) -> None:
        with cache.transact():
            for key, value in items.items():
                cache.set(key, value, expire=timeout)

    def delete_many(keys: Sequence[str]) -> None:
        with cache.transact():
            for key in keys:
                cache.delete(key)

    return RawClient(
        get_many=get_many,
        set_many=set_many,
        delete_many=delete_many,
        close=cache.close,
        description=(
            f"diskcache {diskcache.__version__} Cache.get per key, set/delete in transact()"
        ),
    )


def django_raw(alias: str, timeout: float) -> RawClient:
    """Django's cache API on ``caches[alias]``: get_many, set_many, delete_many."""
    import django
    from django.core.cache import caches

    cache = caches[alias]

    def set_many(items: Mapping[str, bytes]) -> None:
        cache.set_many(items, timeout=timeout)  # type: ignore[arg-type]  # any Mapping works

    return RawClient(
        get_many=cache.get_many,
        set_many=set_many,
        delete_many=cache.delete_many,
        close=cache.close,
        description=(
            f"Django {django.__version__} caches[{alias!r}] ({type(cache).__name__}) "
            "get_many / set_many / delete_many"
        ),
    )
