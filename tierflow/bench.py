"""``tierflow bench``: start a bench-only chain, measure every figure against the chain's
ceiling in the same run (see :mod:`bench.perf`), and write ``docs/performance.md`` (between its
markers), ``docs/performance.png`` and ``bench/results/<name>.json``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TextColumn,
    TimeElapsedColumn,
)

from ledger.logs import configure_logging
from ledger.paths import repo_root


def bench_command(
    quick: Annotated[
        bool, typer.Option(help="The smoke run (under a minute): a few dozen writes per figure.")
    ] = False,
    full: Annotated[bool, typer.Option(help="Add the scale figures (minutes).")] = False,
    record: Annotated[
        bool,
        typer.Option(help="Write docs/performance.md and docs/performance.png (not with --quick)."),
    ] = True,
    results_dir: Annotated[
        Path | None, typer.Option(help="Where the JSON goes (default: bench/results).")
    ] = None,
) -> None:
    """Measure the platform's writes against the chain's ceiling (same run) and record it."""
    # Imported here: the benchmark's modules are heavy, and every other command starts faster.
    from bench.perf import report
    from bench.perf.run import Options, run
    from bench.progress import RunningProgress

    configure_logging("warning")
    console = Console(stderr=True)
    opts = Options(quick=quick, full=full)
    with RunningProgress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        results = asyncio.run(run(opts, progress))
    root = repo_root()
    name = "quick" if quick else "full" if full else "latest"
    report.record_json(results, (results_dir or root / "bench" / "results") / f"{name}.json")
    if record and not quick:
        report.record_markdown(results, root / "docs" / "performance.md")
        report.record_chart(results, root / "docs" / "performance.png")
    console.print(report.render(results))
