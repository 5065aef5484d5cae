"""The transaction layer with and without web3.py's request stack on its hot path, side by side.

``python -m bench.perf.lean_rpc [--clients 1 16] [--writes 160] [--rounds 2]`` starts a bench
chain, measures the split ceiling for one holder, then alternates, round after round, today's
:class:`~ledger.sender.TransactionSender` (the broadcast, the pending nonce and the receipts
through :func:`ledger.node.lean`) and :class:`bench.perf.baseline.Web3StackSender` (the same
through ``w3.eth``, as before change 9 of docs/performance.md), each on a connection of its
own, the same splits of :mod:`bench.perf.writes` at each client count. Besides rate and
latency, the process's own CPU time per write (``time.process_time``), the figure the change
is about and the one least disturbed by other work on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from dataclasses import dataclass

from eth_account import Account
from rich.progress import Progress

from bench.indexer_load import Key
from bench.perf.baseline import Web3StackSender, use_web3_stack
from bench.perf.ceiling import measure_ceiling, split_plan
from bench.perf.chain import bench_chain
from bench.perf.figures import Rate
from bench.perf.writes import closed_loop, split_writes
from ledger.node import Web3Client, close_web3, keep_alive, make_web3
from ledger.sender import GasEstimates, TransactionSender


@dataclass
class Figure:
    variant: str
    rate: Rate
    cpu_ms: float  # this process's CPU per write


async def side_by_side(
    client_counts: list[int], writes: int, rounds: int
) -> tuple[Rate, list[Figure]]:
    figures: list[Figure] = []
    with Progress(transient=True) as progress:
        async with bench_chain(suppliers=2) as chain:
            holders = chain.suppliers[:1]
            ceiling = await measure_ceiling(
                chain.driver,
                split_plan(chain.driver, chain.roots, holders),
                256,
                name="split · ceiling · one holder",
                operation="split",
                holders=1,
                progress=progress,
            )
            lean_w3 = await keep_alive(make_web3(chain.url))
            stack_w3 = await keep_alive(make_web3(chain.url))
            use_web3_stack(stack_w3)
            gas = GasEstimates()

            def lean_sender(w3: Web3Client, key: Key) -> TransactionSender:
                return TransactionSender(w3, Account.from_key(key.private_key), gas_estimates=gas)

            def stack_sender(w3: Web3Client, key: Key) -> TransactionSender:
                account = Account.from_key(key.private_key)
                return Web3StackSender(w3, account, gas_estimates=gas)

            variants = {
                "before: web3.py's stack": (stack_w3, stack_sender),
                "after: lean JSON-RPC": (lean_w3, lean_sender),
            }
            try:
                for _ in range(rounds):
                    for clients in client_counts:
                        for variant, (w3, make) in variants.items():
                            write = split_writes(chain, w3, holders, make)
                            cpu0 = time.process_time()
                            r = await closed_loop(
                                write,
                                writes,
                                clients,
                                name=f"split · sender · {clients} clients · one holder",
                                operation="split",
                                path="sender",
                                holders=1,
                                progress=progress,
                                warmup=1,
                            )
                            cpu = time.process_time() - cpu0
                            r.ceiling = ceiling.rate
                            figures.append(Figure(variant, r, 1000 * cpu / (writes + clients)))
            finally:
                await close_web3(lean_w3)
                await close_web3(stack_w3)
    return ceiling, figures


def report(ceiling: Rate, figures: list[Figure]) -> str:
    lines = [
        f"ceiling (one holder): {ceiling.rate:.0f} splits/s, "
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
    for clients in sorted({f.rate.clients for f in figures}):
        for variant in dict.fromkeys(f.variant for f in figures):
            mine = [f for f in figures if f.variant == variant and f.rate.clients == clients]
            rate = statistics.median(f.rate.rate for f in mine)
            cpu = statistics.median(f.cpu_ms for f in mine)
            lines.append(
                f"{clients} clients, {variant}: median {rate:.1f}/s, CPU {cpu:.2f} ms/write"
            )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--writes", type=int, default=160)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    ceiling, figures = asyncio.run(side_by_side(args.clients, args.writes, args.rounds))
    print(report(ceiling, figures))


if __name__ == "__main__":
    main()
