"""The indexer's progress bar over blocks, shown for long backfills only (``tierflow index``)."""

from __future__ import annotations

from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

#: Ranges at least this many blocks behind get a progress bar (when asked for).
PROGRESS_MIN_BLOCKS = 2_000


class ProgressBar:
    """A rich progress bar over blocks, shown for long backfills only."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._progress: Progress | None = None
        self._task: Any = None
        self._origin = 0

    def start(self, checkpoint: int, target: int) -> None:
        if not self.enabled or self._progress is not None:
            return
        if target - checkpoint < PROGRESS_MIN_BLOCKS:
            return
        self._origin = checkpoint
        self._progress = Progress(
            TextColumn("indexing"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("blocks · {task.fields[events]:,} events"),
            TimeRemainingColumn(),
        )
        self._progress.start()
        self._task = self._progress.add_task("index", total=target - checkpoint, events=0)

    def update(self, checkpoint: int, events: int) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=checkpoint - self._origin, events=events)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
