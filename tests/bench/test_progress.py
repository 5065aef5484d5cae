"""The benchmark's progress display draws only the tasks still running, the latest first cut."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table

from bench.progress import SHOWN, RunningProgress


def _drawn(progress: RunningProgress) -> int:
    (table,) = list(progress.get_renderables())
    assert isinstance(table, Table)
    return table.row_count


def test_finished_tasks_are_not_drawn() -> None:
    progress = RunningProgress(console=Console(file=io.StringIO()), auto_refresh=False)
    for i in range(300):
        done = progress.add_task(f"figure {i}", total=10)
        progress.advance(done, 10)
    running = progress.add_task("the figure being taken", total=10)
    assert _drawn(progress) == 1
    progress.advance(running, 10)
    assert _drawn(progress) == 0


def test_at_most_the_latest_running_tasks_are_drawn() -> None:
    progress = RunningProgress(console=Console(file=io.StringIO()), auto_refresh=False)
    tasks = [progress.add_task(f"figure {i}", total=10) for i in range(SHOWN + 5)]
    assert _drawn(progress) == SHOWN
    (table,) = list(progress.get_renderables())
    assert isinstance(table, Table)
    rendered = io.StringIO()
    Console(file=rendered, width=200).print(table)
    assert f"figure {len(tasks) - 1}" in rendered.getvalue()
    assert "figure 0 " not in rendered.getvalue()
