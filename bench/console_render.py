"""Console benchmark: how long the lineage tree page takes to render for large payables.

Usage: ``python -m bench.console_render [--pieces 2000 10000] [--repeat 7]``.

For each size and shape (``deep``: one chain; ``wide``: the root and its children;
``bushy``: each piece split from a random earlier one; ``tiers``: fan-out 10 per level) it
builds the tree answer as ``GET /v1/payables/{id}/tree`` shapes it (tests/console/samples.py),
then times, in this process, ``--repeat`` times each:

- ``read``: the answer read into pieces (index, subtree sizes, totals);
- ``window``: the window cut around the focus and laid out;
- ``page``: the whole HTML page (all of the above, the SVG and the table, through Jinja2).

It prints the median and the slowest run of each, the pieces drawn and the page's size, and
the slowest page against the budget of one second (the page must stay well under it). The
data is built before timing; building it is not counted.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from backend.console import Console, tree
from bench import console_samples as samples

BUDGET_S = 1.0
SHAPES = ("deep", "wide", "bushy", "tiers")


def _time(fn: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    runs = []
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - start)
    return runs, result


def _ms(runs: list[float]) -> str:
    return f"{statistics.median(runs) * 1000:7.1f} / {max(runs) * 1000:7.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pieces", type=int, nargs="+", default=[2000, 10_000])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    console = Console()
    print(f"console tree render, {platform.python_implementation()} {platform.python_version()}")
    print("times in ms: median / slowest of", args.repeat, "runs")
    print(
        f"{'pieces':>7} {'shape':<6} {'read':>17} {'window':>17} {'page':>17} "
        f"{'drawn':>6} {'levels':>6} {'KiB':>6}"
    )
    worst = 0.0
    for pieces in args.pieces:
        for shape in SHAPES:
            data = samples.big_tree(pieces, shape)
            read_runs, read = _time(partial(tree.read_tree, data, samples.MEMBERS), args.repeat)
            win_runs, win = _time(partial(tree.window, read), args.repeat)
            page_runs, html = _time(
                partial(console.tree_page, data, viewer=samples.AUDITOR, members=samples.MEMBERS),
                args.repeat,
            )
            worst = max(worst, max(page_runs))
            print(
                f"{pieces:>7,} {shape:<6} {_ms(read_runs)} {_ms(win_runs)} {_ms(page_runs)} "
                f"{win.shown:>6} {win.levels_shown:>6} {len(html.encode()) / 1024:>6.0f}"
            )
    print(
        f"slowest page: {worst * 1000:.1f} ms = {worst / BUDGET_S:.2f} of the "
        f"{BUDGET_S * 1000:.0f} ms budget"
    )


if __name__ == "__main__":
    main()
