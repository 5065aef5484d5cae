"""A bench-only chain: anvil on a free port, the suite deployed, a cast registered, and each
supplier holding the root piece of a payable of its own (10^15 fen: room for many splits).

``async with bench_chain(suppliers=16) as chain:`` yields a :class:`BenchChain` with automine
on (or mining every ``block_time`` seconds), its :class:`~bench.indexer_load.Driver` (fast
local signing, batches) and every supplier's root piece.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from bench.indexer_load import Cast, Driver, Key, setup
from bench.perf.bracket import settle_head
from ledger.anvil import AnvilProcess
from ledger.deployment import DAY, Deployment


@dataclass
class BenchChain:
    node: AnvilProcess
    driver: Driver
    roots: dict[str, int]  # supplier address (lower case) → its root piece

    @property
    def url(self) -> str:
        return self.node.url

    @property
    def suppliers(self) -> list[Key]:
        return self.driver.cast.suppliers

    @property
    def deployment(self) -> Deployment:
        assert self.driver.deployment is not None
        return self.driver.deployment


@contextlib.asynccontextmanager
async def bench_chain(
    suppliers: int = 16, block_time: float | None = None, label: str = "tierflow-bench"
) -> AsyncIterator[BenchChain]:
    """A fresh anvil with the cast; stopped on exit."""
    node = AnvilProcess.ephemeral()
    await asyncio.to_thread(node.start)
    try:
        cast = Cast.derive(label, suppliers=suppliers, financiers=2, cores=2)
        driver = await setup(node.url, cast, payables_per_supplier=1, due_in=180 * DAY)
        try:
            roots = {
                p.holder: p.id for p in driver.world.pieces.values() if p.depth == 0 and p.live
            }
            if block_time is None:
                await driver.set_automine(True)
            else:
                await driver.rpc.call("evm_setIntervalMining", [block_time])
            yield BenchChain(node, driver, roots)
        finally:
            await driver.rpc.aclose()
    finally:
        await asyncio.to_thread(node.stop)


async def settle(chain: BenchChain) -> int:
    """Wait until the chain's head stands still (anvil has mined the blocks it still owed the
    last burst of transactions: :mod:`bench.perf.bracket`); returns the blocks mined meanwhile."""
    rpc = chain.driver.rpc

    async def head() -> int:
        return int(await rpc.call("eth_blockNumber", []), 16)

    return await settle_head(head)


#: A transaction left in anvil's pool this long is mined by hand, by the ceiling's batches
#: (bench.perf.ceiling) and the sender's figures (:func:`unstuck`) alike.
NUDGE_AFTER_S = 0.05
#: How often :func:`unstuck` looks at the pool, and how many looks a transaction may sit there:
#: pending at two looks :data:`NUDGE_AFTER_S` apart (until 2026-12-07 0.25 s apart, against the
#: ceiling's 50 ms: a figure of one signer stalled behind its one stuck nonce five times as long).
UNSTICK_EVERY_S = NUDGE_AFTER_S
UNSTICK_AFTER = 2


@contextlib.asynccontextmanager
async def unstuck(chain: BenchChain) -> AsyncIterator[None]:
    """Meanwhile, mine by hand (``evm_mine``) what anvil leaves in its pool: anvil 1.7.1 with
    automine on was seen, under this bench's load, keeping a valid transaction pending for
    minutes (nonce next, fees above the base fee, ``eth_call`` of it fine) while mining empty
    blocks; ``evm_mine`` includes it. A node that mines what it holds makes this a no-op: a
    transaction still pending at :data:`UNSTICK_AFTER` looks in a row, the same one, is mined.
    """
    rpc = chain.driver.rpc

    async def watch() -> None:
        seen: dict[str, int] = {}
        while True:
            await asyncio.sleep(UNSTICK_EVERY_S)
            with contextlib.suppress(Exception):
                content = await rpc.call("txpool_content")
                pending = {
                    tx["hash"]
                    for by_nonce in content.get("pending", {}).values()
                    for tx in by_nonce.values()
                }
                seen = {h: seen.get(h, 0) + 1 for h in pending}
                if any(n >= UNSTICK_AFTER for n in seen.values()):
                    await rpc.call("evm_mine")
                    seen = {}

    task = asyncio.get_running_loop().create_task(watch())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
