"""The transaction layer's own CPU per write, variants side by side.

``python -m bench.perf.sender_cpu [--clients 16] [--writes 160] [--rounds 3]
[--operation split] [--back "after, but web3.py's encoding and eth-account's signing"]``
starts a bench chain (two suppliers) and alternates, round after round, today's sender
("after") and the variants named (``bench.perf.run``'s ``VARIANTS`` and ``ABLATIONS``), the same
writes at the same client count, one holder; ``--back "after, but a request per JSON-RPC
call"`` runs today's sender on a connection of its own without change 30's coalescing. Per
figure: rate, its ratio to the ceilings for the operation measured on the same chain just
before and just after it (their mean: :mod:`bench.perf.bracket`), p50, the load average, and
the process's CPU time per write (``time.process_time``: signing, encoding, JSON and HTTP,
the receipt; the node is another process), the figure least disturbed by other work on the
machine. Medians per variant at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from dataclasses import dataclass

from rich.progress import Progress

from bench.perf.bracket import Step, bracketed
from bench.perf.ceiling import ceiling_step, prepare_calls
from bench.perf.chain import bench_chain, settle
from bench.perf.figures import Rate
from bench.perf.run import ABLATIONS, AFTER, VARIANTS, Connections, Variant, _with
from bench.perf.writes import Write, call_writes, closed_loop
from ledger.sender import GasEstimates

#: Writes in each ceiling measured before and after every figure.
CEILING_WRITES = 256


@dataclass
class Figure:
    variant: str
    rate: Rate
    cpu_ms: float


async def side_by_side(
    operation: str, clients: int, writes: int, rounds: int, back: list[str]
) -> tuple[list[Rate], list[Figure]]:
    every = {**VARIANTS, **ABLATIONS}
    variants = {AFTER: every[AFTER], **{b: every[b] for b in back}}
    figures: list[Figure] = []
    with Progress(transient=True) as progress:
        async with bench_chain(suppliers=2) as chain:
            connections = Connections(chain.url)
            gas = GasEstimates()

            def step(variant: str, make: Variant) -> Step[Write]:
                async def prepare() -> Write:
                    stock = await prepare_calls(chain, operation, 1, writes + clients)
                    on = await connections.of(variant)
                    return call_writes(chain, on, stock, _with(make, gas))

                async def measure(write: Write) -> Rate:
                    await closed_loop(
                        write, 0, clients, name="warm-up", operation=operation,
                        path="sender", holders=1, progress=progress, warmup=1,
                    )  # fmt: skip
                    cpu0 = time.process_time()
                    r = await closed_loop(
                        write, writes, clients,
                        name=f"{operation} · sender · {clients} clients · {variant}",
                        operation=operation, path="sender", holders=1, progress=progress,
                    )  # fmt: skip
                    r.variant = variant
                    figures.append(Figure(variant, r, 1000 * (time.process_time() - cpu0) / writes))
                    return r

                return Step(prepare, measure)

            steps = [step(v, make) for _ in range(rounds) for v, make in variants.items()]
            try:
                ceilings, _ = await bracketed(
                    ceiling_step(chain, operation, 1, CEILING_WRITES, progress=progress),
                    steps,
                    settle=lambda: settle(chain),
                )
            finally:
                await connections.aclose()
    return ceilings, figures


def report(ceilings: list[Rate], figures: list[Figure]) -> str:
    first = ceilings[0]
    lines = [
        f"ceilings ({first.operation}, one holder, {first.count} writes each), in order: "
        + ", ".join(f"{c.rate:.0f}/s" for c in ceilings),
        "",
        "| variant | clients | writes | rate/s | ceilings before / after | ratio | p50 "
        "| CPU per write | load |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for f in figures:
        r = f.rate
        before, after = r.ceilings
        lines.append(
            f"| {f.variant} | {r.clients} | {r.count} | {r.rate:.1f} | {before:.0f} / {after:.0f} "
            f"| {r.ratio or 0:.3f} | {r.p50 * 1000:.0f} ms | {f.cpu_ms:.2f} ms | "
            f"{r.load_before:.2f} → {r.load_after:.2f} |"
        )
    lines.append("")
    for variant in dict.fromkeys(f.variant for f in figures):
        mine = [f for f in figures if f.variant == variant]
        rate = statistics.median(f.rate.rate for f in mine)
        ratio = statistics.median(f.rate.ratio or 0 for f in mine)
        cpu = statistics.median(f.cpu_ms for f in mine)
        lines.append(f"{variant}: median {rate:.1f}/s, ratio {ratio:.3f}, CPU {cpu:.2f} ms/write")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--operation", default="split")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--writes", type=int, default=160)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--back", nargs="+", default=[])
    args = ap.parse_args()
    ceilings, figures = asyncio.run(
        side_by_side(args.operation, args.clients, args.writes, args.rounds, args.back)
    )
    print(report(ceilings, figures))


if __name__ == "__main__":
    main()
