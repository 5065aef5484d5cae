"""The benchmark's progress display: only the tasks still running are drawn.

A default ``tierflow bench`` adds a few hundred tasks to one :class:`rich.progress.Progress`
(one per figure, ceiling and seed step) and never removes them. Rich redraws its table ten times
a second from a thread of the benchmark's own process, and with every task drawn that thread
held the GIL long enough to make the benchmark's clients late: the open-loop read generator,
with 300 finished tasks on the display, was late by up to 217 ms (p99; 2.9 ms with none) and
a piece read at 500/s measured p99 809 ms instead of 9 ms against the same server. A figure
taken late in the run measured the display as much as the platform.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import RenderableType
from rich.progress import Progress

SHOWN = 8  # running tasks drawn at most (the latest ones)


class RunningProgress(Progress):
    """A :class:`~rich.progress.Progress` that draws only its unfinished tasks, at most
    :data:`SHOWN` of them: the cost of a redraw no longer grows with the run."""

    def get_renderables(self) -> Iterable[RenderableType]:
        running = [task for task in self.tasks if not task.finished]
        yield self.make_tasks_table(running[-SHOWN:])
