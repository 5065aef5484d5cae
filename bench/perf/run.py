"""One benchmark run: every figure, in order, with progress bars; returns :class:`Results`.

Sizes: ``quick`` (the CI smoke run, under a minute: a few dozen writes per figure; not the
auto-approval figures, which start a stack of their own and take minutes), the default,
and ``full`` (adds the scale figures that take minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import platform
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from eth_account import Account
from rich.progress import Progress

from bench import gas_table, indexer_backfill
from bench.indexer_load import Key
from bench.perf import auto_approval
from bench.perf.api import ApiFigures, ReadFigure, api_figures
from bench.perf.api_writes import OperationCounts, ceiling_for
from bench.perf.baseline import BaselineSender, use_plain_lean
from bench.perf.bracket import Step, bracketed
from bench.perf.ceiling import (
    OPERATIONS,
    ceiling_step,
    measure_ceiling,
    prepare_calls,
    split_plan,
)
from bench.perf.chain import BenchChain, bench_chain, settle, unstuck
from bench.perf.figures import Rate, load_average
from bench.perf.scale import ScaleFigure, scale_figures
from bench.perf.self_writes import SelfCounts
from bench.perf.writes import (
    SenderFactory,
    Write,
    call_writes,
    closed_loop,
    open_loop,
    split_writes,
)
from ledger.anvil import AnvilProcess
from ledger.node import Web3Client, close_web3, keep_alive, make_web3
from ledger.sender import GasEstimates, TransactionSender

MANY = 16  # holders in the "many holders" figures


@dataclass(frozen=True)
class Options:
    quick: bool = False
    full: bool = False
    block_time_rate: float = 200.0  # offered writes/s with a 1 s block time
    block_time_seconds: float = 5.0

    @property
    def bracket_count(self) -> int:
        """Writes in each ceiling measured next to a figure (before and after it; settlement
        batches: :meth:`operation_counts`)."""
        return 128 if self.quick else 256

    @property
    def writes_per_figure(self) -> int:
        return 48 if self.quick else 160

    @property
    def http_writes(self) -> dict[int, int]:
        """Concurrent clients → HTTP splits measured: twenty writes and more a client, so a figure
        is the stack's pace once every client is in flight, not its first burst (96 at 16
        clients, six a client, was two seconds of ramp and tail)."""
        return {1: 24, 16: 320, 64: 640}

    read_rates: tuple[float, ...] = (200.0, 500.0)
    read_seconds: float = 5.0

    @property
    def client_counts(self) -> tuple[int, ...]:
        return (1, 16) if self.quick else (1, 16, 64)

    def operation_counts(self, operation: str) -> tuple[int, int]:
        """(ceiling, per sender figure) writes of an operation other than the split: a
        settlement batch is 50 pieces, each split off first."""
        if operation == "settlement batch":
            return (16, 8) if self.quick else (24, 16)
        return (64, 32) if self.quick else (self.bracket_count, self.writes_per_figure)

    def operation_shapes(self, operation: str) -> list[tuple[int, int]]:
        """(clients, signers) of the transaction layer's figures of an operation other than
        the split (settlement batches: at most 16 in flight, anvil's block gas)."""
        if self.quick:
            return [(16, 1)]
        shapes = [(1, 1), (16, 1), (64, 1), (16, MANY), (64, MANY)]
        if operation == "settlement batch":
            shapes = [(c, h) for c, h in shapes if c <= 16]
        return shapes


@dataclass
class Results:
    started: str
    machine: dict[str, Any]
    options: dict[str, Any]
    writes: list[Rate] = field(default_factory=list)
    reads: list[ReadFigure] = field(default_factory=list)
    indexer: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    indexer_lag: list[tuple[str, str, str]] = field(default_factory=list)
    gas: list[tuple[str, int, str]] = field(default_factory=list)
    scale: list[ScaleFigure] = field(default_factory=list)
    auto_approval: list[auto_approval.Figure] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # sections that failed, and why
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "machine": self.machine,
            "options": self.options,
            "seconds": self.seconds,
            "writes": [r.summary() for r in self.writes],
            "reads": [asdict(r) for r in self.reads],
            "indexer": self.indexer,
            "indexer_lag": self.indexer_lag,
            "gas": self.gas,
            "scale": [asdict(f) for f in self.scale],
            "auto_approval": [asdict(f) for f in self.auto_approval],
            "failures": self.failures,
        }


def machine() -> dict[str, Any]:
    import os

    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_at_start": load_average(),
    }


async def _web3(url: str) -> Web3Client:
    return await keep_alive(make_web3(url))


#: The transaction layer's variants, each measured next to the others (same chain, same run):
#: label → how a sender is made (``GasEstimates`` shared by the run).
Variant = Callable[[Web3Client, Key, GasEstimates], TransactionSender]


def _baseline(cache: bool = False, **kw: Any) -> Variant:
    def make(w3: Web3Client, key: Key, gas: GasEstimates) -> TransactionSender:
        account = Account.from_key(key.private_key)
        return BaselineSender(w3, account, gas_estimates=gas if cache else None, **kw)

    return make


def _current(cache: bool = True) -> Variant:
    def make(w3: Web3Client, key: Key, gas: GasEstimates) -> TransactionSender:
        return TransactionSender(
            w3, Account.from_key(key.private_key), gas_estimates=gas if cache else None
        )

    return make


def _with(make: Variant, gas: GasEstimates) -> SenderFactory:
    def factory(w3: Web3Client, key: Key) -> TransactionSender:
        return make(w3, key, gas)

    return factory


BEFORE = "before (823f713)"
AFTER = "after"
VARIANTS: dict[str, Variant] = {BEFORE: _baseline(), AFTER: _current()}
#: Each change taken back alone from "after", for the configurations in ABLATED.
ABLATIONS: dict[str, Variant] = {
    "after, but the lock held over round trips": _baseline(
        poll=False, cache=True, web3_encoding=False
    ),
    "after, but a receipt poll per transaction": _baseline(
        serial=False, cache=True, web3_encoding=False
    ),
    "after, but eth_estimateGas per write": _current(cache=False),
    "after, but web3.py's encoding and eth-account's signing": _baseline(
        serial=False, poll=False, cache=True
    ),
    "after, but a request per JSON-RPC call": _current(),
}
#: The variants whose connection's lean client is not today's, and how it is set up: a request
#: per JSON-RPC call (before change 30).
LEAN_CLIENTS: dict[str, Callable[[Web3Client], None]] = {
    BEFORE: use_plain_lean,
    "after, but a request per JSON-RPC call": use_plain_lean,
}


class Connections:
    """One node connection per kind of lean client the variants use (today's, and each of
    :data:`LEAN_CLIENTS`), made on first use."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._made: dict[Callable[[Web3Client], None] | None, Web3Client] = {}

    async def of(self, variant: str) -> Web3Client:
        setup = LEAN_CLIENTS.get(variant)
        if setup not in self._made:
            w3 = await _web3(self.url)
            if setup is not None:
                setup(w3)
            self._made[setup] = w3
        return self._made[setup]

    async def aclose(self) -> None:
        for w3 in self._made.values():
            await close_web3(w3)
        self._made.clear()


ABLATED = {(16, "one holder")}


async def sender_writes(chain: BenchChain, opts: Options, progress: Progress) -> list[Rate]:
    """Splits, for one holder and for many: each sender variant at each client count, every
    figure between two ceilings of the same holders measured next to it on the same chain
    (:func:`bench.perf.bracket.bracketed`: ``C F C F … C``), a transaction anvil leaves in its
    pool mined by hand as the ceiling's are (:func:`bench.perf.chain.unstuck`)."""
    out: list[Rate] = []
    suppliers = chain.suppliers
    shapes = {"one holder": suppliers[:1], "many holders": suppliers[:MANY]}
    gas = GasEstimates()
    connections = Connections(chain.url)
    try:
        for label, holders in shapes.items():
            ceiling = split_ceiling_step(chain, holders, opts.bracket_count, label, progress)
            figures: list[Step[Any]] = []
            for clients in opts.client_counts:
                if label == "many holders" and clients == 1:
                    continue  # one client writes for one holder at a time
                used = holders[: min(len(holders), clients)]
                variants = dict(VARIANTS)
                if (clients, label) in ABLATED and not opts.quick:
                    variants.update(ABLATIONS)
                for variant, make in variants.items():
                    on = await connections.of(variant)
                    figures.append(
                        _figure_step(
                            functools.partial(split_writes, chain, on, used, _with(make, gas)),
                            opts.writes_per_figure,
                            clients,
                            name=f"split · sender · {clients} clients · {label}",
                            operation="split",
                            holders=len(used),
                            variant=variant,
                            progress=progress,
                            around=lambda: unstuck(chain),
                        )
                    )
            ceilings, done = await bracketed(ceiling, figures, settle=lambda: settle(chain))
            out += _interleaved(ceilings, done)
    finally:
        await connections.aclose()
    return out


def split_ceiling_step(
    chain: BenchChain, holders: Sequence[Key], count: int, label: str, progress: Progress
) -> Step[Any]:
    """The split ceiling of ``holders`` as a bracketing step (nothing to prepare)."""

    async def prepare() -> None:
        return None

    async def measure(_: None) -> Rate:
        return await measure_ceiling(
            chain.driver,
            split_plan(chain.driver, chain.roots, holders),
            count,
            name=f"split · ceiling · {label}",
            operation="split",
            holders=len(holders),
            progress=progress,
        )

    return Step(prepare, measure)


def _figure_step(
    make_write: Callable[[], Write],
    count: int,
    clients: int,
    *,
    name: str,
    operation: str,
    holders: int,
    variant: str,
    progress: Progress,
    around: Callable[[], contextlib.AbstractAsyncContextManager[None]] | None = None,
) -> Step[Write]:
    """A transaction-layer figure as a bracketing step: its writes made (``make_write``) when
    prepared, measured by :func:`closed_loop` (inside ``around()`` if given)."""

    async def prepare() -> Write:
        return make_write()

    async def measure(write: Write) -> Rate:
        async with around() if around is not None else contextlib.nullcontext():
            r = await closed_loop(
                write,
                count,
                clients,
                name=name,
                operation=operation,
                path="sender",
                holders=holders,
                progress=progress,
                warmup=1,
            )
        r.variant = variant
        return r

    return Step(prepare, measure)


def _interleaved(ceilings: Sequence[Rate], figures: Sequence[Rate]) -> list[Rate]:
    """``C F C F … C`` as measured (the report's order)."""
    out: list[Rate] = []
    for c, f in zip(ceilings, figures, strict=False):
        out += [c, f]
    return out + list(ceilings[len(figures) :])


async def operation_writes(chain: BenchChain, opts: Options, progress: Progress) -> list[Rate]:
    """Whole transfers, financing applications, approvals and settlement batches: today's
    sender at each (clients, signers) of :meth:`Options.operation_shapes`, sending calls
    prepared as the ceiling's are, each figure between two ceilings of the same operation and
    as many signers (one, or many) measured next to it (:func:`bench.perf.bracket.bracketed`).
    Settlement last: it moves the chain's clock."""
    out: list[Rate] = []
    gas = GasEstimates()
    w3 = await _web3(chain.url)
    try:
        for operation in OPERATIONS:
            if operation == "split":
                continue
            ceiling_n, figure_n = opts.operation_counts(operation)
            for one in (True, False):
                shapes = [(c, h) for c, h in opts.operation_shapes(operation) if (h == 1) == one]
                if not shapes:
                    continue
                figures: list[Step[Any]] = []
                for clients, holders in shapes:
                    signers = min(holders, clients)
                    figures.append(
                        _operation_step(
                            chain, w3, gas, operation, signers, figure_n, clients, progress
                        )
                    )
                ceiling = ceiling_step(
                    chain, operation, 1 if one else MANY, ceiling_n, progress=progress
                )
                ceilings, done = await bracketed(ceiling, figures, settle=lambda: settle(chain))
                out += _interleaved(ceilings, done)
    finally:
        await close_web3(w3)
    return out


def _operation_step(
    chain: BenchChain,
    w3: Web3Client,
    gas: GasEstimates,
    operation: str,
    signers: int,
    count: int,
    clients: int,
    progress: Progress,
) -> Step[Any]:
    """Today's sender sending ``count`` calls of ``operation`` prepared for ``signers``."""

    async def prepare() -> tuple[Write, int]:
        stock = await prepare_calls(chain, operation, signers, count + clients)
        used = len({c.key.address for c in stock})
        return call_writes(chain, w3, stock, _with(VARIANTS[AFTER], gas)), used

    async def measure(prepared: tuple[Write, int]) -> Rate:
        write, used = prepared
        label = "one holder" if used == 1 else "many holders"
        step = _figure_step(
            lambda: write,
            count,
            clients,
            name=f"{operation} · sender · {clients} clients · {label}",
            operation=operation,
            holders=used,
            variant=AFTER,
            progress=progress,
            around=lambda: unstuck(chain),
        )
        return await step.measure(write)

    return Step(prepare, measure)


async def block_time_writes(opts: Options, progress: Progress) -> list[Rate]:
    """At a 1 s block time (QBFT-like), writes offered at a fixed rate over many holders.

    No pre-signed ceiling here: the chain's rate is the offered one as long as a block holds a
    second's writes (200 splits use about half of anvil's 60M gas limit); what is measured is
    whether the platform keeps up (achieved = offered) with p99 under block time + 1 s."""
    async with bench_chain(suppliers=MANY, block_time=1) as chain:
        holders = chain.suppliers[:MANY]
        w3 = await _web3(chain.url)
        try:
            gas = GasEstimates()
            runs = []
            for variant, make in VARIANTS.items():
                r = await open_loop(
                    split_writes(chain, w3, holders, _with(make, gas)),
                    opts.block_time_rate,
                    opts.block_time_seconds,
                    len(holders),
                    name=f"split · sender · {opts.block_time_rate:g}/s offered · block time 1 s",
                    operation="split",
                    path="sender",
                    holders=len(holders),
                    progress=progress,
                )
                r.variant = variant
                runs.append(r)
        finally:
            await close_web3(w3)
        return runs


async def indexer_figures(opts: Options, progress: Progress, results: Results) -> None:
    """Events/s mirrored into SQLite and PostgreSQL against fetch-only (bench.indexer_backfill),
    and the lag behind the head at 200 writes/s with a block a second."""
    args = argparse.Namespace(
        events=100_000 if opts.full else 20_000,
        runs=3 if opts.full else 1,
        skip_postgres=False,
        rate=200.0,
        lag_seconds=10.0,
    )
    node = AnvilProcess.ephemeral()
    await asyncio.to_thread(node.start)
    try:
        figures = await indexer_backfill.bench(node.url, args, progress)
    finally:
        await asyncio.to_thread(node.stop)
    results.indexer = [
        (f"{what} ({figures.events:,} events)", rate, ratio, aim, met)
        for what, rate, ratio, aim, met in indexer_backfill.rows(figures)
    ]
    if figures.lag is not None:
        results.indexer_lag = indexer_backfill.lag_rows(figures.lag)


async def gas_figures(progress: Progress, results: Results) -> None:
    node = AnvilProcess.ephemeral()
    await asyncio.to_thread(node.start)
    try:
        results.gas = await gas_table.measure(node.url, progress)
    finally:
        await asyncio.to_thread(node.stop)


T = TypeVar("T")


async def _section(
    results: Results, name: str, work: Awaitable[T], into: list[Any] | None = None
) -> T | None:
    """Run one section; a failure is recorded (and printed in the report), the run goes on."""
    try:
        done = await work
    except Exception as exc:
        results.failures.append(f"{name}: {type(exc).__name__}: {exc}")
        return None
    if into is not None and isinstance(done, list):
        into += done
    return done


async def postgres_http(opts: Options, progress: Progress) -> ApiFigures:
    """Hosted splits (16 and 64 clients), self-custody splits and financing applications
    through two API workers on PostgreSQL (a database of the run's own, dropped after)."""
    writes = {c: n for c, n in opts.http_writes.items() if c > 1}
    async with indexer_backfill.postgres_database() as url:
        applications = OperationCounts(
            transfers=0,
            applications=((16, 320), (64, 640)),
            approvals=0,
            settlement_batches=0,
            workers=2,
        )
        api = await api_figures(2, (), opts.read_seconds, writes, progress, applications, url)
    for r in api.writes:  # "split · HTTP PostgreSQL · 2 workers · self custody · 16 clients"
        name = r.name.replace(" · 2 workers", "").replace(
            "HTTP self custody", "HTTP · self custody"
        )
        r.name = name.replace("HTTP", "HTTP PostgreSQL · 2 workers", 1)
    return api


async def run(opts: Options, progress: Progress) -> Results:
    results = Results(
        started=datetime.now(UTC).isoformat(timespec="seconds"),
        machine=machine(),
        options={"quick": opts.quick, "full": opts.full},
    )
    t0 = time.perf_counter()
    async with bench_chain(suppliers=MANY) as chain:
        results.writes += await sender_writes(chain, opts, progress)
        await _section(
            results, "other operations", operation_writes(chain, opts, progress), results.writes
        )
    if not opts.quick:
        await _section(results, "block time 1 s", block_time_writes(opts, progress), results.writes)
        for workers in (1, 2):
            api = await _section(
                results,
                f"HTTP, {workers} worker(s)",
                api_figures(
                    workers,
                    opts.read_rates,
                    opts.read_seconds,
                    opts.http_writes if workers == 1 else None,
                    progress,
                    OperationCounts()
                    if workers == 1
                    else OperationCounts.applications_only(workers),
                    self_counts=SelfCounts() if workers == 1 else None,
                ),
            )
            if api is None:
                continue
            for r in api.writes:  # the same operation's ceiling on the bench chain, same run
                r.ceiling = ceiling_for(r, results.writes)
            results.writes += api.writes
            results.reads += api.reads
            results.failures += api.failures
        # The production database: two workers share no file lock there (on SQLite every
        # write of every worker queues for one), so their writes are measured on it too.
        api = await _section(results, "HTTP, 2 workers, PostgreSQL", postgres_http(opts, progress))
        if api is not None:
            for r in api.writes:
                r.ceiling = ceiling_for(r, results.writes)
            results.writes += api.writes
            results.failures += api.failures
        await _section(results, "indexer", indexer_figures(opts, progress, results))
        await _section(results, "scale", scale_figures(opts.full, progress), results.scale)
        await _section(
            results,
            "auto-approval",
            auto_approval.measure(auto_approval.Options(), progress),
            results.auto_approval,
        )
    await _section(results, "gas", gas_figures(progress, results))
    results.seconds = time.perf_counter() - t0
    return results
