"""The HTTP write path before and after a change, side by side on one stack.

``python -m bench.perf.write_path [--clients 16] [--writes 96] [--rounds 2] [--database sqlite]``
starts a :class:`bench.stack.Stack` seeded as :mod:`bench.perf.api` seeds it, then alternates
the API process between ``tierflow serve`` (*after*) and a wrapped server with an earlier
behaviour put back (*before*; :mod:`bench.perf.baseline_api`), running the same
``POST /v1/claims/{id}/transfers`` splits (one holder) through each, ``rounds`` times. Every
figure carries the 1-minute load average before and after it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from rich.progress import Progress

from bench.api_load import database, seed
from bench.perf.api import APPLICANTS, http_splits
from bench.perf.figures import Rate
from bench.stack import Stack

#: The server each variant runs (None: ``tierflow serve`` as it is).
VARIANTS: dict[str, list[str] | None] = {
    "before": ["bench.perf.baseline_api"],
    "after": None,
}


async def restart(stack: Stack, module: list[str] | None) -> None:
    stack.procs["api"].stop()
    stack.start_api(module=module)
    await stack.wait_ready()


@contextlib.asynccontextmanager
async def seeded_stack(kind: str, progress: Progress) -> AsyncIterator[tuple[Stack, object]]:
    env = {"TIERFLOW_API_RATE_LIMIT": str(10**9)}
    with tempfile.TemporaryDirectory(prefix="tierflow-bench-path-") as directory:
        async with (
            database(kind) as url,
            Stack.start(Path(directory), database_url=url, extra_env=env) as stack,
        ):
            s = await seed(stack, APPLICANTS, progress)
            try:
                yield stack, s
            finally:
                await s.close()


async def side_by_side(clients: int, writes: int, rounds: int, kind: str) -> list[tuple[str, Rate]]:
    out: list[tuple[str, Rate]] = []
    with Progress(transient=True) as progress:
        async with seeded_stack(kind, progress) as (stack, s):
            for _ in range(rounds):
                for variant, module in VARIANTS.items():
                    await restart(stack, module)
                    rate = await http_splits(s, clients, writes, True, progress)  # type: ignore[arg-type]
                    out.append((variant, rate))
    return out


def report(figures: list[tuple[str, Rate]]) -> str:
    lines = [
        "| variant | writes | rate/s | p50 | p99 | load before → after |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for variant, r in figures:
        lines.append(
            f"| {variant} | {r.count} | {r.rate:.1f} | {r.p50 * 1000:.0f} ms | "
            f"{r.p99 * 1000:.0f} ms | {r.load_before:.2f} → {r.load_after:.2f} |"
        )
    for variant in VARIANTS:
        rates = [r.rate for v, r in figures if v == variant]
        p50s = [r.p50 * 1000 for v, r in figures if v == variant]
        lines.append(
            f"\n{variant}: median rate {statistics.median(rates):.1f}/s, "
            f"median p50 {statistics.median(p50s):.0f} ms over {len(rates)} rounds"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--writes", type=int, default=96)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    args = ap.parse_args()
    figures = asyncio.run(side_by_side(args.clients, args.writes, args.rounds, args.database))
    print(report(figures))


if __name__ == "__main__":
    main()
