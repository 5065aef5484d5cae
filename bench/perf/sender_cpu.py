"""The transaction layer's own CPU per write, variants side by side.

``python -m bench.perf.sender_cpu [--clients 16] [--writes 160] [--rounds 3]
[--operation split] [--back "after, but web3.py's encoding and eth-account's signing"]``
starts a bench chain (two suppliers) and alternates, round after round, today's sender
("after") and the variants named (``bench.perf.run``'s ``VARIANTS`` and ``ABLATIONS``), the same
writes at the same client count, one holder; ``--back "after, but a request per JSON-RPC
call"`` runs today's sender on a connection of its own without change 30's coalescing. Per
figure: rate, its ratio to the ceiling for the operation measured on the same chain first,
p50, the load average, and the process's CPU time per write (``time.process_time``: signing,
encoding, JSON and HTTP, the receipt; the node is another process), the figure least
disturbed by other work on the machine. Medians per variant at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from dataclasses import dataclass

from rich.progress import Progress

from bench.perf.baseline import use_plain_lean
from bench.perf.ceiling import operation_ceiling, prepare_calls
from bench.perf.chain import bench_chain
from bench.perf.figures import Rate
from bench.perf.run import ABLATIONS, AFTER, PLAIN_LEAN, VARIANTS, _with
from bench.perf.writes import call_writes, closed_loop
from ledger.node import close_web3, keep_alive, make_web3
from ledger.sender import GasEstimates


@dataclass
class Figure:
    variant: str
    rate: Rate
    cpu_ms: float


async def side_by_side(
    operation: str, clients: int, writes: int, rounds: int, back: list[str]
) -> tuple[Rate, list[Figure]]:
    every = {**VARIANTS, **ABLATIONS}
    variants = {AFTER: every[AFTER], **{b: every[b] for b in back}}
    figures: list[Figure] = []
    with Progress(transient=True) as progress:
        async with bench_chain(suppliers=2) as chain:
            ceiling = await operation_ceiling(chain, operation, 1, 256, progress=progress)
            w3 = await keep_alive(make_web3(chain.url))
            plain_w3 = await keep_alive(make_web3(chain.url))
            use_plain_lean(plain_w3)
            gas = GasEstimates()
            try:
                for _ in range(rounds):
                    for variant, make in variants.items():
                        stock = await prepare_calls(chain, operation, 1, writes + clients)
                        on = plain_w3 if variant in PLAIN_LEAN else w3
                        write = call_writes(chain, on, stock, _with(make, gas))
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
                        cpu = time.process_time() - cpu0
                        r.ceiling = ceiling.rate
                        r.variant = variant
                        figures.append(Figure(variant, r, 1000 * cpu / writes))
            finally:
                await close_web3(w3)
                await close_web3(plain_w3)
    return ceiling, figures


def report(ceiling: Rate, figures: list[Figure]) -> str:
    lines = [
        f"ceiling ({ceiling.operation}, one holder): {ceiling.rate:.0f}/s, "
        f"load {ceiling.load_before:.2f} → {ceiling.load_after:.2f}",
        "",
        "| variant | clients | writes | rate/s | ratio | p50 | CPU per write | load |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for f in figures:
        r = f.rate
        lines.append(
            f"| {f.variant} | {r.clients} | {r.count} | {r.rate:.1f} | "
            f"{r.rate / ceiling.rate:.3f} | {r.p50 * 1000:.0f} ms | {f.cpu_ms:.2f} ms | "
            f"{r.load_before:.2f} → {r.load_after:.2f} |"
        )
    lines.append("")
    for variant in dict.fromkeys(f.variant for f in figures):
        mine = [f for f in figures if f.variant == variant]
        rate = statistics.median(f.rate.rate for f in mine)
        cpu = statistics.median(f.cpu_ms for f in mine)
        lines.append(f"{variant}: median {rate:.1f}/s, CPU {cpu:.2f} ms/write")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--operation", default="split")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--writes", type=int, default=160)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--back", nargs="+", default=[])
    args = ap.parse_args()
    ceiling, figures = asyncio.run(
        side_by_side(args.operation, args.clients, args.writes, args.rounds, args.back)
    )
    print(report(ceiling, figures))


if __name__ == "__main__":
    main()
