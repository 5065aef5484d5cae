"""Where a write's time goes: the transaction layer's closed loop under pyinstrument.

``python -m bench.perf.profile [--clients 16] [--holders 1] [--writes 400]`` starts a bench
chain, runs the splits of :mod:`bench.perf.writes` and prints pyinstrument's call tree (wall
time, async-aware: time a coroutine spends awaiting is shown under the await), also saved to
``bench/results/profile-<clients>x<holders>.txt``.
"""

from __future__ import annotations

import argparse
import asyncio

from eth_account import Account
from pyinstrument import Profiler
from rich.progress import Progress

from bench.indexer_load import Key
from bench.perf.chain import bench_chain
from bench.perf.writes import closed_loop, split_writes
from ledger.node import Web3Client, close_web3, keep_alive, make_web3
from ledger.paths import repo_root
from ledger.sender import GasEstimates, TransactionSender


async def profile(clients: int, holders: int, writes: int) -> str:
    async with bench_chain(suppliers=max(2, holders)) as chain:
        w3 = await keep_alive(make_web3(chain.url))
        try:
            gas = GasEstimates()

            def make(w3: Web3Client, key: Key) -> TransactionSender:
                account = Account.from_key(key.private_key)
                return TransactionSender(w3, account, gas_estimates=gas)

            write = split_writes(chain, w3, chain.suppliers[:holders], make)
            with Progress(transient=True) as progress:
                await closed_loop(
                    write, 16, clients, name="warm-up", operation="split", path="sender",
                    holders=holders, progress=progress,
                )  # fmt: skip
                profiler = Profiler(async_mode="enabled", interval=0.0005)
                profiler.start()
                r = await closed_loop(
                    write, writes, clients, name="profiled", operation="split", path="sender",
                    holders=holders, progress=progress,
                )  # fmt: skip
                profiler.stop()
        finally:
            await close_web3(w3)
    head = (
        f"{writes} splits, {clients} clients, {holders} holders: "
        f"{r.rate:.0f}/s, p50 {r.p50 * 1000:.0f} ms\n"
    )
    return head + profiler.output_text(unicode=True, color=False, show_all=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--holders", type=int, default=1)
    ap.add_argument("--writes", type=int, default=400)
    args = ap.parse_args()
    text = asyncio.run(profile(args.clients, args.holders, args.writes))
    out = repo_root() / "bench" / "results" / f"profile-{args.clients}x{args.holders}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
