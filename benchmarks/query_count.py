"""Count the queries a call makes, however many (Django's own query log stops at 9000)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def queries_of(call: Callable[[], Any]) -> tuple[int, Any]:
    """The number of statements ``call`` sent on the default connection, and its result."""
    from django.db import connection

    count = 0

    def counting(execute: Any, sql: Any, params: Any, many: Any, context: Any) -> Any:
        nonlocal count
        count += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(counting):
        result = call()
    return count, result
