"""The chain's ceiling for an operation: the same calls the platform makes, signed before the
clock starts and sent as JSON-RPC batches of at most :data:`IN_FLIGHT`, one batch at a time.

Bounded on purpose: anvil 1.7.1 stops mining and grows without bound when a few thousand
transactions from one sender are queued at once. The clock stops when every receipt is in;
each must have status 1 (a ceiling of reverted calls would flatter the chain).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence

from rich.progress import Progress

from bench.indexer_load import Driver, Key, RpcFailed, Tx
from bench.perf.figures import Rate, load_average

IN_FLIGHT = 64
RESEND_AFTER_S = 5.0

#: ``plan(i)``: the i-th call of a run (holder, call) — the same plan drives every path.
Plan = Callable[[int], Tx]


def split_plan(driver: Driver, roots: dict[str, int], holders: Sequence[Key]) -> Plan:
    """Splits of one unit from each holder's root to the next supplier, holders in turn."""
    suppliers = driver.cast.suppliers

    def plan(i: int) -> Tx:
        holder = holders[i % len(holders)]
        to = suppliers[(suppliers.index(holder) + 1) % len(suppliers)]
        return driver.split_tx(holder, roots[holder.address], to.address, 1)

    return plan


async def receipts(driver: Driver, hashes: Sequence[str]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for i in range(0, len(hashes), 256):
        chunk = hashes[i : i + 256]
        out += await driver.rpc.batch([("eth_getTransactionReceipt", [h]) for h in chunk])
    return out


async def mined(
    driver: Driver, hashes: Sequence[str], senders: Sequence[str], raws: Sequence[str]
) -> None:
    """Wait until each sender's last transaction of a batch has a receipt: nonces are mined in
    order, so the whole batch is in and what is in flight stays bounded by one batch. (anvil
    answers ``eth_sendRawTransaction`` before it mines: sending batch after batch without this
    queues thousands, and anvil 1.7.1 then stops mining.) Seen once on a loaded machine: a
    transaction of a batch never mined with the pool empty; after :data:`RESEND_AFTER_S`
    without a receipt the batch is sent again (the same bytes: known ones are refused)."""
    last = list({s: h for s, h in zip(senders, hashes, strict=True)}.values())
    deadline = time.perf_counter() + RESEND_AFTER_S
    for _ in range(3):
        while time.perf_counter() < deadline:
            got = await driver.rpc.batch([("eth_getTransactionReceipt", [h]) for h in last])
            if all(r is not None for r in got):
                return
            await asyncio.sleep(0.002)
        for raw in raws:
            with contextlib.suppress(RpcFailed):
                await driver.rpc.call("eth_sendRawTransaction", [raw])
        deadline = time.perf_counter() + RESEND_AFTER_S
    raise RuntimeError(f"a ceiling batch was not mined, though sent three times: {last}")


async def measure_ceiling(
    driver: Driver,
    plan: Plan,
    count: int,
    *,
    name: str,
    operation: str,
    holders: int,
    progress: Progress,
) -> Rate:
    """Send ``count`` calls of ``plan`` pre-signed, in batches of ≤ 64 (each mined before the
    next leaves), then check every receipt."""
    await driver.refresh_gas_price()
    await driver.sync_nonces()
    txs = [plan(i) for i in range(count)]
    raws, hashes = driver.sign(txs)
    senders = [t.key.address for t in txs]
    task = progress.add_task(name, total=count)
    rate = Rate(name, operation, "ceiling", clients=1, holders=holders, count=count)
    rate.load_before = load_average()
    t0 = time.perf_counter()
    for i in range(0, count, IN_FLIGHT):
        sent = time.perf_counter()
        chunk = raws[i : i + IN_FLIGHT]
        await driver.rpc.batch([("eth_sendRawTransaction", [r]) for r in chunk])
        await mined(
            driver, hashes[i : i + IN_FLIGHT], senders[i : i + IN_FLIGHT], raws[i : i + IN_FLIGHT]
        )
        took = time.perf_counter() - sent
        rate.latencies += [took] * len(chunk)
        progress.advance(task, len(chunk))
    got = await receipts(driver, hashes)
    while any(r is None for r in got):  # interval mining: wait for the last blocks
        await asyncio.sleep(0.02)
        got = await receipts(driver, hashes)
    rate.seconds = time.perf_counter() - t0
    rate.load_after = load_average()
    failed = [h for h, r in zip(hashes, got, strict=True) if int(r["status"], 16) != 1]
    if failed:
        raise RuntimeError(f"{len(failed)} of {count} ceiling calls reverted, first {failed[0]}")
    return rate
