"""A one-line progress bar for long management commands, drawn only on a terminal.

Output redirected to a file or a pipe (cron, CI logs) stays free of carriage returns:
the bar is silent there, and the command's summary lines say what happened.
"""

from __future__ import annotations

import time
from typing import Any

BAR_WIDTH = 30
REDRAW_EVERY = 0.1
"""Seconds between redraws: drawing every batch of a fast run would dominate it."""


class ProgressBar:
    """``label [#########.....] 1500/3000`` on ``stream``, redrawn in place.

    ``enabled=None`` draws only when ``stream`` is a TTY. Use as a context manager, or
    call :meth:`close` to end the line.
    """

    def __init__(self, stream: Any, label: str, total: int, enabled: bool | None = None) -> None:
        self.stream = stream
        self.label = label
        self.total = max(total, 0)
        self.done = 0
        isatty = getattr(stream, "isatty", None)
        self.enabled = bool(isatty and isatty()) if enabled is None else enabled
        self._drawn_at = 0.0

    def advance(self, amount: int) -> None:
        """Record ``amount`` more units done and redraw when it is time to."""
        self.done += amount
        now = time.monotonic()
        if self.enabled and (now - self._drawn_at >= REDRAW_EVERY or self.done >= self.total):
            self._drawn_at = now
            self._draw()

    def _draw(self) -> None:
        total = max(self.total, self.done, 1)
        filled = int(BAR_WIDTH * self.done / total)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        self._write(f"\r{self.label} [{bar}] {self.done}/{max(self.total, self.done)}")

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text, ending="")  # Django's OutputWrapper adds no newline
        except TypeError:
            self.stream.write(text)  # a plain text stream
        self.stream.flush()

    def close(self) -> None:
        """End the bar's line (nothing happens when the bar is silent)."""
        if self.enabled:
            self._draw()
            self._write("\n")
            self.enabled = False

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
