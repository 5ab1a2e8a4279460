"""Helpers for testing code that uses drf-instcache against real cache servers.

The server launchers need ``mirakuru`` (in the ``test`` extra) and the server binaries
(``memcached``, ``redis-server``); they bind only to free loopback ports.
"""
