"""Writes through the transaction layer: :class:`ledger.sender.TransactionSender`, as the API's
gateway uses it (web3 bindings, a keep-alive connection pool, one sender per member account
shared by its concurrent requests), sending the same calls as the ceiling's plan.

- :func:`closed_loop`: ``clients`` tasks, each sending one write after another (the next once
  the previous is mined and checked), client ``c`` signing for holder ``c mod holders``;
- :func:`open_loop`: writes started at a fixed offered rate whether or not earlier ones are done
  (for a chain mining every second, as QBFT does), latency from each write's scheduled time.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from eth_account import Account
from eth_utils.address import to_checksum_address
from rich.progress import Progress

from bench.indexer_load import Key
from bench.perf.ceiling import Call
from bench.perf.chain import BenchChain
from bench.perf.figures import Rate, load_average
from ledger import calls
from ledger.bindings import Suite
from ledger.calls import ContractCall
from ledger.node import Web3Client
from ledger.sender import TransactionSender

#: ``make_sender(w3, key)``: how a run builds the sender for a member account.
SenderFactory = Callable[[Web3Client, Key], TransactionSender]
#: ``write(client index, operation index)``: one write, returning once mined and checked.
Write = Callable[[int, int], Awaitable[Any]]


def default_sender(w3: Web3Client, key: Key) -> TransactionSender:
    return TransactionSender(w3, Account.from_key(key.private_key))


async def transact(sender: TransactionSender, suite: Suite, call: ContractCall) -> Any:
    """Send ``call`` and wait for it as the gateway does (``Suite.call_fields``); a sender that
    says ``web3_encoding`` (:class:`bench.perf.baseline.BaselineSender`) gets a web3.py
    contract function instead, as every write did before change 21."""
    if getattr(sender, "web3_encoding", False):
        return await sender.transact(call.bind(suite))
    return await sender.transact_fields(suite.call_fields(call))


def split_writes(
    chain: BenchChain,
    w3: Web3Client,
    holders: Sequence[Key],
    make_sender: SenderFactory = default_sender,
) -> Write:
    """Splits of one unit from each holder's root to the next supplier (the ceiling's plan)."""
    suite = Suite(w3, chain.deployment)
    suppliers = chain.suppliers
    senders = {k.address: make_sender(w3, k) for k in holders}

    async def write(client: int, _: int) -> Any:
        holder = holders[client % len(holders)]
        to = suppliers[(suppliers.index(holder) + 1) % len(suppliers)]
        call = calls.split(chain.roots[holder.address], to_checksum_address(to.address), 1, None)
        return await transact(senders[holder.address], suite, call)

    return write


def call_writes(
    chain: BenchChain,
    w3: Web3Client,
    stock: Sequence[Call],
    make_sender: SenderFactory = default_sender,
) -> Write:
    """Any operation's prepared calls (:func:`bench.perf.ceiling.prepare_calls`, the same the
    ceiling sends): write ``i`` sends ``stock[i]`` by its own signer's sender (one per account,
    shared by the clients); each warm-up write (``i < 0``) takes the next call from the end of
    the stock.
    """
    suite = Suite(w3, chain.deployment)
    senders = {c.key.address: make_sender(w3, c.key) for c in stock}
    spare = itertools.count(len(stock) - 1, -1)

    async def write(_: int, i: int) -> Any:
        c = stock[i if i >= 0 else next(spare)]
        return await transact(senders[c.key.address], suite, c.call)

    return write


async def closed_loop(
    write: Write,
    count: int,
    clients: int,
    *,
    name: str,
    operation: str,
    path: str,
    holders: int,
    progress: Progress,
    warmup: int = 0,
) -> Rate:
    """``count`` writes by ``clients`` concurrent clients (after ``warmup`` uncounted each)."""
    for c in range(clients if warmup else 0):
        for w in range(warmup):
            await write(c, -1 - w)
    rate = Rate(name, operation, path, clients=clients, holders=holders, count=count)
    task = progress.add_task(name, total=count)
    counter = itertools.count()

    async def client(c: int) -> None:
        while (i := next(counter)) < count:
            t0 = time.perf_counter()
            await write(c, i)
            rate.latencies.append(time.perf_counter() - t0)
            progress.advance(task)

    rate.load_before = load_average()
    t0 = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)))
    rate.seconds = time.perf_counter() - t0
    rate.load_after = load_average()
    return rate


async def open_loop(
    write: Write,
    offered: float,
    seconds: float,
    clients: int,
    *,
    name: str,
    operation: str,
    path: str,
    holders: int,
    progress: Progress,
) -> Rate:
    """Writes started at ``offered``/s for ``seconds``, spread over ``clients`` accounts' worth
    of client indexes; latency from each write's scheduled start to its checked receipt."""
    count = int(offered * seconds)
    rate = Rate(name, operation, path, clients=clients, holders=holders, count=count)
    rate.offered = offered
    task = progress.add_task(name, total=count)
    rate.load_before = load_average()
    start = time.perf_counter() + 0.05

    async def one(i: int, scheduled: float) -> None:
        await write(i % clients, i)
        rate.latencies.append(time.perf_counter() - scheduled)
        progress.advance(task)

    tasks = []
    for i in range(count):
        scheduled = start + i / offered
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, scheduled)))
    await asyncio.gather(*tasks)
    rate.seconds = time.perf_counter() - start
    rate.load_after = load_average()
    return rate
