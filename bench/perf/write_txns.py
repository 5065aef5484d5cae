"""A hosted write's database transactions, and the write path's figures, side by side.

``python -m bench.perf.write_txns [--against DIR…] [--database sqlite|postgres] [--workers 1]
[--clients 16 64] [--holders 1] [--writes 160] [--rounds 2] [--count 20] [--no-figures]`` starts one
:class:`bench.stack.Stack` seeded as :mod:`bench.perf.api` seeds it, then:

- *counts*: the API restarted as ``bench/perf/txn_counter.py`` (one worker, every transaction
  of its engines logged) for this checkout and, with ``--against DIR…``, the code of each
  checkout ``DIR`` (``git archive <commit> | tar -x -C DIR``): ``--count`` hosted splits
  (``POST /v1/claims/{id}/transfers``, one unit) and as many financing applications
  (``POST /v1/financing-requests``), one at a time; per write, the transactions begun, those
  that committed a write, and the statements (the worker's background tasks, named
  ``tierflow-…``, left out);
- *figures*: the API as ``tierflow serve`` with ``--workers`` workers, each variant in turn
  (every other round in reverse order: anvil slows down as its chain grows), ``--rounds``
  times: ``--writes`` hosted splits by ``clients`` concurrent clients from one
  holder's piece, or client ``c`` from holder ``c % --holders``'s (up to 16 accounts; each
  client sends its next once answered; one warm-up each first): splits/s,
  p50/p99, the answers that were not 201 (503 when a write waited past
  ``TIERFLOW_API_DATABASE_LOCK_WAIT_S`` for SQLite's write lock), the API's CPU per write (the
  server process and its workers, ``/proc``) and the 1-minute load average before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.progress import Progress

from bench.api_load import APPLICATION_AMOUNT, Seed, database, seed
from bench.perf.api import APPLICANTS
from bench.perf.figures import load_average, quantile
from bench.stack import Stack

HERE = Path(__file__).resolve().parent
COUNTER = HERE / "txn_counter.py"
THIS = "after"
#: Where the stack's files go (anvil's and SQLite's writes off the disk).
SHM = "/dev/shm" if os.path.isdir("/dev/shm") else None


def _tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` and its descendants (uvicorn's workers)."""
    total = 0.0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


async def _restart(stack: Stack, tree: Path | None, workers: int, log: Path | None) -> None:
    """The API as ``tierflow serve`` (``log``: as the counter) of checkout ``tree`` (None:
    this one)."""
    stack.procs["api"].stop()
    env = {"TIERFLOW_API_WORKERS": str(workers)}
    if tree is not None:
        env.update(PYTHONPATH=str(tree), TIERFLOW_REPO_ROOT=str(tree))
    if log is not None:
        stack.spawn("api", str(COUNTER), str(log), extra_env=env, program=[sys.executable])
    else:
        stack.start_api(extra_env=env)
    await stack.wait_ready()


@dataclass
class Counted:
    variant: str
    operation: str
    writes: int
    lines: list[dict[str, Any]]

    def per_write(self) -> dict[str, float]:
        ours = [x for x in self.lines if not str(x["task"]).startswith("tierflow-")]
        wrote = [x for x in ours if x["end"] == "commit" and x["writes"]]
        return {
            "transactions": len(ours) / self.writes,
            "write transactions": len(wrote) / self.writes,
            "statements": sum(x["statements"] for x in ours) / self.writes,
        }

    def shapes(self) -> list[tuple[tuple[str, ...], int]]:
        """The write transactions' tables and how often each shape came."""
        ours = [x for x in self.lines if not str(x["task"]).startswith("tierflow-")]
        shapes = collections.Counter(
            tuple(dict.fromkeys(x["writes"])) for x in ours if x["end"] == "commit" and x["writes"]
        )
        return shapes.most_common()


async def _split(s: Seed, holder: int = 0) -> int:
    actor, piece = s.applicants[holder]
    to = s.applicants[(holder + 1) % len(s.applicants)][0].address
    r = await actor.http.post(
        f"/v1/claims/{piece}/transfers",
        json={"to": to, "amount": 1},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    return r.status_code


async def _apply(s: Seed, i: int) -> int:
    actor, piece = s.applicants[i % len(s.applicants)]
    r = await actor.http.post(
        "/v1/financing-requests",
        json={"claim_id": piece, "financier": s.financier.address, "amount": APPLICATION_AMOUNT},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    return r.status_code


async def count(
    stack: Stack, s: Seed, variant: str, tree: Path | None, n: int, logs: Path
) -> list[Counted]:
    log = logs / f"{variant.replace(' ', '_').replace('/', '_')}-{uuid.uuid4().hex[:6]}.jsonl"
    await _restart(stack, tree, 1, log)
    out: list[Counted] = []

    async def split(_i: int) -> int:
        return await _split(s)

    async def apply(i: int) -> int:
        return await _apply(s, i)

    for operation, one in (("split", split), ("application", apply)):
        for i in range(2):  # warm-ups: the sender's first nonce sync, caches
            assert await one(i) in (200, 201)
        await asyncio.sleep(0.3)
        before = len(log.read_text().splitlines())
        for i in range(n):
            status = await one(i)
            assert status in (200, 201), status
        await asyncio.sleep(0.3)
        lines = [json.loads(x) for x in log.read_text().splitlines()[before:]]
        out.append(Counted(variant, operation, n, lines))
    return out


@dataclass
class Figure:
    variant: str
    clients: int
    workers: int
    writes: int
    holders: int = 1
    latencies: list[float] = field(default_factory=list)
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    seconds: float = 0.0
    cpu_s: float = 0.0
    load_before: float = 0.0
    load_after: float = 0.0

    @property
    def ok(self) -> int:
        return self.statuses[201]

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu_s / max(1, sum(self.statuses.values()) + self.clients)


async def figure(
    stack: Stack,
    s: Seed,
    variant: str,
    tree: Path | None,
    workers: int,
    clients: int,
    n: int,
    holders: int = 1,
) -> Figure:
    await _restart(stack, tree, workers, None)
    f = Figure(variant, clients, workers, n, holders)
    pid = stack.procs["api"].popen.pid
    counter = iter(range(n))

    async def client(c: int) -> None:
        holder = c % holders
        await _split(s, holder)  # warm-up, uncounted (its CPU is counted: see cpu_ms)
        while next(counter, None) is not None:
            t0 = time.perf_counter()
            status = await _split(s, holder)
            f.latencies.append(time.perf_counter() - t0)
            f.statuses[status] += 1

    cpu0 = _tree_cpu(pid)
    f.load_before = load_average()
    t0 = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)))
    f.seconds = time.perf_counter() - t0
    f.load_after = load_average()
    f.cpu_s = _tree_cpu(pid) - cpu0
    return f


async def run(args: argparse.Namespace) -> tuple[list[Counted], list[Figure]]:
    variants: dict[str, Path | None] = {}
    for tree in args.against:
        variants[f"before ({tree.name})"] = tree.resolve()
    variants[THIS] = None
    env = {"TIERFLOW_API_RATE_LIMIT": str(10**9)}
    counted: list[Counted] = []
    figures: list[Figure] = []
    with (
        Progress(transient=True) as progress,
        tempfile.TemporaryDirectory(prefix="tierflow-bench-txns-", dir=SHM) as directory,
    ):
        async with (
            database(args.database) as url,
            Stack.start(Path(directory) / "stack", database_url=url, extra_env=env) as stack,
        ):
            s = await seed(stack, APPLICANTS, progress)
            # Seeded clients time out at 5 s by default; a write under load may take longer.
            for actor, _ in s.applicants:
                actor.http.timeout = 60.0
            try:
                if args.count:
                    for variant, tree in variants.items():
                        counted += await count(stack, s, variant, tree, args.count, Path(directory))
                        print(report_counts(counted[-2:]), flush=True)
                if not args.no_figures:
                    for round_ in range(args.rounds):
                        # Every other round in reverse order: the chain (anvil) grows slower
                        # with its blocks, which would favour whichever variant runs first.
                        order = list(variants.items())
                        if round_ % 2:
                            order.reverse()
                        for clients in args.clients:
                            for variant, tree in order:
                                f = await figure(
                                    stack,
                                    s,
                                    variant,
                                    tree,
                                    args.workers,
                                    clients,
                                    args.writes,
                                    min(args.holders, APPLICANTS),
                                )
                                figures.append(f)
                                print(report_figures([f], header=False), flush=True)
            finally:
                await s.close()
    return counted, figures


def report_counts(counted: list[Counted]) -> str:
    lines = [
        "| variant | write | transactions | of which committed writes | statements |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for c in counted:
        p = c.per_write()
        lines.append(
            f"| {c.variant} | {c.operation} | {p['transactions']:.1f} | "
            f"{p['write transactions']:.1f} | {p['statements']:.1f} |"
        )
    for c in counted:
        shapes = "; ".join(f"{'+'.join(t)} ×{k}" for t, k in c.shapes())
        lines.append(f"\n{c.variant}, {c.operation}: {shapes}")
    return "\n".join(lines)


def report_figures(figures: list[Figure], header: bool = True) -> str:
    lines = (
        [
            "| variant | workers | clients | holders | splits | rate/s | p50 | p99 | not 201 | "
            "API CPU per write | load |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |",
        ]
        if header
        else []
    )
    for f in figures:
        others = {k: v for k, v in f.statuses.items() if k != 201}
        lines.append(
            f"| {f.variant} | {f.workers} | {f.clients} | {f.holders} | {f.ok} | {f.rate:.1f} | "
            f"{quantile(f.latencies, 0.5) * 1000:.0f} ms | {quantile(f.latencies, 0.99) * 1000:.0f}"
            f" ms | {others or '-'} | {f.cpu_ms:.2f} ms | {f.load_before:.1f} → "
            f"{f.load_after:.1f} |"
        )
    return "\n".join(lines)


def summary(figures: list[Figure]) -> str:
    out = []
    for key in dict.fromkeys((f.variant, f.clients) for f in figures):
        fs = [f for f in figures if (f.variant, f.clients) == key]
        out.append(
            f"{key[0]}, {key[1]} clients: median {statistics.median(f.rate for f in fs):.1f} "
            f"splits/s, p50 {statistics.median(quantile(f.latencies, 0.5) for f in fs) * 1000:.0f}"
            f" ms, p99 {statistics.median(quantile(f.latencies, 0.99) for f in fs) * 1000:.0f} ms,"
            f" CPU {statistics.median(f.cpu_ms for f in fs):.2f} ms/write, not 201: "
            f"{sum(sum(v for k, v in f.statuses.items() if k != 201) for f in fs)} over "
            f"{len(fs)} rounds"
        )
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--against", type=Path, nargs="*", default=[], help="other checkouts' code as variants"
    )
    ap.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--clients", type=int, nargs="*", default=[16, 64])
    ap.add_argument("--holders", type=int, default=1, help="holders split from (at most 16)")
    ap.add_argument("--writes", type=int, default=160)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--count", type=int, default=20, help="writes counted (0: no counts)")
    ap.add_argument("--no-figures", action="store_true")
    args = ap.parse_args()
    counted, figures = asyncio.run(run(args))
    print()
    if counted:
        print(report_counts(counted))
    if figures:
        print(report_figures(figures))
        print(summary(figures))


if __name__ == "__main__":
    main()
