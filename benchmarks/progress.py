"""Progress reporting the workloads can call without knowing who listens.

Workloads announce how many steps a stage takes and advance one step at a time; the CLI
shows a rich progress bar per stage, the smoke test passes :class:`Silent`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID


class ProgressSink(Protocol):
    def stage(self, name: str, total: int) -> None:
        """Start a stage of ``total`` steps (the previous one is marked complete)."""

    def step(self) -> None:
        """One step of the current stage done."""

    def note(self, text: str) -> None:
        """Say what the current stage is doing now."""


class Silent:
    """A sink that ignores everything."""

    def stage(self, name: str, total: int) -> None:
        pass

    def step(self) -> None:
        pass

    def note(self, text: str) -> None:
        pass


class RichProgress:
    """One rich progress bar per stage, each kept on screen when finished."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: TaskID | None = None
        self._name = ""

    def stage(self, name: str, total: int) -> None:
        self.finish()
        self._name = name
        self._task = self._progress.add_task(name, total=max(total, 1))

    def step(self) -> None:
        if self._task is not None:
            self._progress.advance(self._task)

    def note(self, text: str) -> None:
        if self._task is not None:
            self._progress.update(self._task, description=f"{self._name} · {text}")

    def finish(self) -> None:
        """Mark the current stage complete, even if it took fewer steps than planned."""
        if self._task is None:
            return
        task = next(task for task in self._progress.tasks if task.id == self._task)
        self._progress.update(self._task, completed=task.total, description=self._name)
        self._task = None
