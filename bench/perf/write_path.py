"""The HTTP write path before and after a change, side by side on one stack.

``python -m bench.perf.write_path [--back bookkeeping web3-stack] [--against DIR] [--self]
[--operation split|split-many|application] [--clients 16] [--writes 96] [--rounds 2]
[--warm 0] [--database sqlite]`` starts a
:class:`bench.stack.Stack` seeded as :mod:`bench.perf.api` seeds it, then alternates the API
process between ``tierflow serve`` (*after*) and, for each change named in ``--back``, a
wrapped server with that change taken back alone (:mod:`bench.perf.baseline_api`), running the
same writes through each, ``rounds`` times, the variants' order reversed every other round
(anvil slows as its chain grows: a fixed order would favour the first): ``POST
/v1/claims/{id}/transfers`` splits of a hosted member's (one holder), of sixteen hosted
members' (``--operation split-many``, client ``c`` for member ``c mod 16``), their financing
applications (``--operation application``, :func:`bench.perf.api_writes.applications`), or
with ``--self`` a ``self`` member's splits signing with the client (202 intent, signature,
relay). Every figure carries the 1-minute load average before and after it,
and the API process's own CPU time per write (``/proc/<pid>/stat``; one worker, so one
process): less disturbed by the machine's other work than the rate. ``--against DIR`` adds a
variant *before (DIR)*: ``tierflow serve`` running the code of another checkout ``DIR`` (``git
archive <commit> | tar -x -C DIR``, with its ``build/``) against the same stack, for a change
that cannot be taken back by a patch (the ``self`` member's client is always this checkout's:
it runs in this process). ``--warm N`` sends ``N`` uncounted applications (or, with
``--self``, splits) after each restart, before the CPU is read: a restarted worker's first
write for each applicant decrypts its key (scrypt, ~0.1 s of CPU each, sixteen applicants),
which otherwise adds ~5 ms to the CPU per write of a round of 300 and to its p99, whatever
the variant; a ``self`` member's first writes compile the worker's statements. With
``--self`` the CPU per write is also read for the client (this process: verifying, signing,
its HTTP), the indexer and anvil.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from rich.progress import Progress

from bench.api_load import Seed, database, seed
from bench.perf.api import APPLICANTS, http_splits, self_custody_splits
from bench.perf.api_writes import applications
from bench.perf.baseline_api import CHANGES
from bench.perf.figures import Rate
from bench.stack import Stack

AFTER = "after"


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def restart(stack: Stack, module: list[str] | Path | None) -> None:
    """The API as ``module`` (a wrapped server), or the code of checkout ``module`` (a
    directory), or ``tierflow serve``."""
    stack.procs["api"].stop()
    if isinstance(module, Path):
        tree = str(module)  # absolute (main() resolves it)
        stack.start_api(extra_env={"PYTHONPATH": tree, "TIERFLOW_REPO_ROOT": tree})
    else:
        stack.start_api(module=module)
    await stack.wait_ready()


@contextlib.asynccontextmanager
async def seeded_stack(kind: str, progress: Progress) -> AsyncIterator[tuple[Stack, Seed, Path]]:
    env = {"TIERFLOW_API_RATE_LIMIT": str(10**9)}
    with tempfile.TemporaryDirectory(prefix="tierflow-bench-path-") as directory:
        async with (
            database(kind) as url,
            Stack.start(Path(directory), database_url=url, extra_env=env) as stack,
        ):
            s = await seed(stack, APPLICANTS, progress)
            try:
                yield stack, s, Path(directory)
            finally:
                await s.close()


#: A figure: the variant, the rate, and CPU per write by process (``api`` always; with
#: ``--self`` also ``client``, this process, which signs, ``indexer`` and ``anvil``).
Figure = tuple[str, Rate, dict[str, float]]


def stack_pids(stack: Stack) -> dict[str, int]:
    """The processes whose CPU a ``self`` figure reads (this one is the client)."""
    pids = {"api": stack.procs["api"].popen.pid, "client": os.getpid()}
    if "indexer" in stack.procs:
        pids["indexer"] = stack.procs["indexer"].popen.pid
    if stack.node.process is not None:
        pids["anvil"] = stack.node.process.pid
    return pids


async def side_by_side(
    back: list[str],
    self_custody: bool,
    clients: int,
    writes: int,
    rounds: int,
    kind: str,
    against: Path | None = None,
    operation: str = "split",
    warm: int = 0,
) -> list[Figure]:
    variants: dict[str, list[str] | Path | None] = {}
    if against is not None:
        variants[f"before ({against.name})"] = against
    variants[AFTER] = None
    variants.update({f"{AFTER}, but {c} as before": ["bench.perf.baseline_api", c] for c in back})
    out: list[Figure] = []
    with Progress(transient=True) as progress:
        async with seeded_stack(kind, progress) as (stack, s, directory):
            for round_ in range(rounds):
                order = list(variants.items())
                for variant, module in order if round_ % 2 == 0 else reversed(order):
                    await restart(stack, module)
                    pids = stack_pids(stack) if self_custody else {"api": stack_pids(stack)["api"]}
                    if warm and operation == "application" and not self_custody:
                        await applications(s, clients, warm, progress, [])
                    cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}

                    def started(pids: dict[str, int] = pids, cpu0: dict[str, float] = cpu0) -> None:
                        cpu0.update({name: cpu_seconds(pid) for name, pid in pids.items()})

                    if self_custody:
                        (rate,) = await self_custody_splits(
                            stack,
                            s,
                            {clients: writes},
                            directory,
                            progress,
                            warm,
                            started if warm else None,
                        )
                        # the member made, its units given, one warm-up: counted unless warmed
                        uncounted = 0 if warm else 3
                    elif operation == "application":
                        rate = await applications(s, clients, writes, progress, [])
                        uncounted = 0
                    else:
                        one_holder = operation == "split"
                        rate = await http_splits(s, clients, writes, one_holder, progress)
                        uncounted = clients  # one warm-up per client
                    cpu_ms = {
                        name: 1000 * (cpu_seconds(pid) - cpu0[name]) / (writes + uncounted)
                        for name, pid in pids.items()
                    }
                    out.append((variant, rate, cpu_ms))
    return out


def report(figures: list[Figure]) -> str:
    names = list(dict.fromkeys(n for _, _, cpu in figures for n in cpu))
    lines = [
        "| variant | writes | rate/s | p50 | p99 | "
        + " | ".join(f"{n} CPU per write" for n in names)
        + " | load before → after |",
        "| --- | ---: | ---: | ---: | ---: | " + " | ".join("---:" for _ in names) + " | ---: |",
    ]
    for variant, r, cpu in figures:
        lines.append(
            f"| {variant} | {r.count} | {r.rate:.1f} | {r.p50 * 1000:.0f} ms | "
            f"{r.p99 * 1000:.0f} ms | "
            + " | ".join(f"{cpu.get(n, float('nan')):.1f} ms" for n in names)
            + f" | {r.load_before:.2f} → {r.load_after:.2f} |"
        )
    for variant in dict.fromkeys(v for v, _, _ in figures):
        rates = [r.rate for v, r, _ in figures if v == variant]
        p50s = [r.p50 * 1000 for v, r, _ in figures if v == variant]
        cpus = ", ".join(
            f"{n} {statistics.median(c[n] for v, _, c in figures if v == variant and n in c):.1f}"
            for n in names
        )
        lines.append(
            f"\n{variant}: median rate {statistics.median(rates):.1f}/s, "
            f"median p50 {statistics.median(p50s):.0f} ms, CPU per write (ms, medians) {cpus} "
            f"over {len(rates)} rounds"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--back", nargs="*", choices=CHANGES, default=["bookkeeping"])
    ap.add_argument("--against", type=Path, help="another checkout's code as a variant")
    ap.add_argument("--self", dest="self_custody", action="store_true")
    ap.add_argument("--operation", choices=("split", "split-many", "application"), default="split")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--writes", type=int, default=96)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument(
        "--warm", type=int, default=0, help="uncounted applications (or self splits) per restart"
    )
    ap.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    args = ap.parse_args()
    figures = asyncio.run(
        side_by_side(
            args.back,
            args.self_custody,
            args.clients,
            args.writes,
            args.rounds,
            args.database,
            args.against.resolve() if args.against else None,
            args.operation,
            args.warm,
        )
    )
    print(report(figures))


if __name__ == "__main__":
    main()
