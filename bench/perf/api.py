"""The platform through HTTP: a :class:`bench.stack.Stack` (anvil, the suite, ``tierflow index``
and ``tierflow serve`` with ``workers`` processes, SQLite) seeded through the API as
:func:`bench.api_load.seed` does (members, three payables, a tree of 50 pieces, a financing
history, a piece for each of sixteen applicants), then:

- writes: ``POST /v1/claims/{id}/transfers`` splitting one unit at 1, 16 and 64 concurrent
  clients, for one holder (every client splits the same member's piece) and for many (client
  ``c`` for applicant ``c mod 16``); each answers once mined and mirrored, as the API does;
- the same split by a ``self`` member (docs/consent.md) at 1, 16 and 64 clients, one holder: the
  member's key in a key file, :class:`client.TierflowClient` with a
  :class:`client.signing.KeyfileSigner` doing what a partner's system does (``POST`` → 202
  intent → verify, sign the EIP-712 request → ``POST /v1/intents/{id}/signature`` → the
  relayer's ``execute`` mined and mirrored → the answer);
- ``self`` members' splits (many holders), financing applications and a ``self`` bank's
  approvals (:mod:`bench.perf.self_writes`);
- reads, open loop at each offered rate (:func:`bench.api_load.open_loop`, in a process of
  its own: :mod:`bench.open_loop_apart`; latency from the scheduled time, the generator's own
  dispatch lag kept): a piece, the tree, a piece's events
  feed, next to ``GET /v1/deployment`` (no key, no database: the framework's floor).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from eth_account import Account
from rich.progress import Progress

from bench.api_load import (
    KYC,
    TIMEOUT_S,
    ReadRun,
    Seed,
    seed,
    service_time,
    wait_idle,
)
from bench.http_actor import Actor
from bench.open_loop_apart import open_loop_apart
from bench.perf.api_writes import OperationCounts, operation_figures
from bench.perf.figures import Rate, load_average, quantile
from bench.perf.self_writes import SelfCounts, self_figures
from bench.stack import Stack
from client import TierflowClient
from client.signing import KeyfileSigner

APPLICANTS = 16
#: Concurrent clients of the ``self`` member's writes.
SELF_CLIENTS = (1, 16, 64)


@dataclass
class ReadFigure:
    name: str
    workers: int
    offered: float
    achieved: float
    p50: float
    p99: float
    alone: float  # median of the same request one at a time
    lag_p99: float  # the generator's own dispatch lag
    errors: int
    load_before: float
    load_after: float

    @classmethod
    def of(cls, run: ReadRun, workers: int, before: float) -> ReadFigure:
        return cls(
            run.name,
            workers,
            run.rate,
            run.achieved,
            run.p50,
            run.p99,
            run.service,
            quantile(run.dispatch_lags, 0.99),
            run.errors,
            before,
            load_average(),
        )


@dataclass
class ApiFigures:
    writes: list[Rate] = field(default_factory=list)
    reads: list[ReadFigure] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


async def http_splits(
    s: Seed, clients: int, count: int, one_holder: bool, progress: Progress
) -> Rate:
    label = "one holder" if one_holder else "many holders"
    holders = s.applicants[:1] if one_holder else s.applicants[: min(clients, APPLICANTS)]
    rate = Rate(
        f"split · HTTP · {clients} clients · {label}",
        "split",
        "http",
        clients=clients,
        holders=len(holders),
        count=count,
    )
    task = progress.add_task(rate.name, total=count)
    counter = iter(range(count))

    async def one(actor: Actor, piece: int, to: str) -> None:
        made = await actor.post(f"/v1/claims/{piece}/transfers", {"to": to, "amount": 1})
        if made["kind"] != "split":
            raise RuntimeError(f"a one-unit transfer came back {made['kind']}")

    async def client(c: int) -> None:
        h = c % len(holders)
        actor, piece = holders[h]
        to = s.applicants[(h + 1) % len(s.applicants)][0].address  # never the holder itself
        await one(actor, piece, to)  # uncounted: the worker unlocks the member's key first
        while next(counter, None) is not None:
            t0 = time.perf_counter()
            await one(actor, piece, to)
            rate.latencies.append(time.perf_counter() - t0)
            progress.advance(task)

    # Warm-ups first, all at once; then the clock.
    rate.load_before = load_average()
    t0 = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)))
    rate.seconds = time.perf_counter() - t0
    rate.load_after = load_average()
    rate.count = len(rate.latencies)
    return rate


#: Units a ``self`` member is given to split from (one per write, warm-ups included).
SELF_UNITS = 100_000
KEYFILE_PASSWORD = "bench-self-custody"


async def self_custody_splits(
    stack: Stack,
    s: Seed,
    writes: dict[int, int],
    directory: Path,
    progress: Progress,
    warm: int = 0,
    started: Callable[[], object] | None = None,
) -> list[Rate]:
    """Splits by a ``self`` member signing with the client, at each ``clients → count``;
    ``warm`` uncounted splits first (at the first figure's concurrency), then ``started()``
    (a caller's CPU counters read) before the first counted one."""
    account = Account.create()
    keyfile = directory / "self-member.json"
    KeyfileSigner.write_keyfile(keyfile, account.key, KEYFILE_PASSWORD)
    signer = KeyfileSigner.from_keyfile(keyfile, KEYFILE_PASSWORD)
    async with stack.client(stack.operator_key) as operator:
        r = await operator.post(
            "/v1/members",
            json={
                "name": "Bench Self Supplier",
                "roles": ["supplier"],
                "kyc_expires_at": KYC,
                "address": signer.address,
            },
            headers=Stack.idem(),
        )
        r.raise_for_status()
        api_key = r.json()["api_key"]
    giver, giver_piece = s.applicants[-1]
    given = await giver.post(
        f"/v1/claims/{giver_piece}/transfers", {"to": signer.address, "amount": SELF_UNITS}
    )
    piece = int(given["claim_id"])
    to = s.applicants[0][0].address
    out: list[Rate] = []
    tf = TierflowClient(stack.base_url, api_key, signer=signer, timeout=TIMEOUT_S)
    try:

        async def one() -> None:
            made = await tf.claims.transfer(piece, to=to, amount=1)
            if made.kind != "split":
                raise RuntimeError(f"a one-unit transfer came back {made.kind}")

        await one()  # uncounted: the client reads and pins the deployment once
        if warm:
            left = iter(range(warm))

            async def warming() -> None:
                while next(left, None) is not None:
                    await one()

            await asyncio.gather(*(warming() for _ in range(min(warm, next(iter(writes))))))
        if started is not None:
            started()
        for clients, count in writes.items():
            rate = Rate(
                f"split · HTTP self custody · {clients} clients · one holder",
                "split",
                "http-self",
                clients=clients,
                holders=1,
                count=count,
            )
            task = progress.add_task(rate.name, total=count)
            counter = iter(range(count))

            async def client(rate: Rate = rate, counter: Any = counter, task: Any = task) -> None:
                while next(counter, None) is not None:
                    t0 = time.perf_counter()
                    await one()
                    rate.latencies.append(time.perf_counter() - t0)
                    progress.advance(task)

            rate.load_before = load_average()
            t0 = time.perf_counter()
            await asyncio.gather(*(client() for _ in range(clients)))
            rate.seconds = time.perf_counter() - t0
            rate.load_after = load_average()
            rate.count = len(rate.latencies)
            out.append(rate)
    finally:
        await tf.aclose()
    return out


async def api_figures(
    workers: int,
    rates: tuple[float, ...],
    seconds: float,
    writes: dict[int, int] | None,
    progress: Progress,
    operations: OperationCounts | None = None,
    database_url: str | None = None,
    self_counts: SelfCounts | None = None,
) -> ApiFigures:
    """One stack with ``workers`` API workers: reads at each rate; splits if ``writes`` (clients
    → count) is given, the other write operations (:mod:`bench.perf.api_writes`) if
    ``operations`` is, ``self`` members' other writes (:mod:`bench.perf.self_writes`) if
    ``self_counts`` is (a figure that fails is recorded, the rest and the reads still run).
    The stack's database is SQLite unless ``database_url`` names another."""
    env = {"TIERFLOW_API_RATE_LIMIT": str(10**9), "TIERFLOW_API_WORKERS": str(workers)}
    out = ApiFigures()
    with tempfile.TemporaryDirectory(prefix="tierflow-bench-api-") as directory:
        async with Stack.start(Path(directory), database_url=database_url, extra_env=env) as stack:
            s = await seed(stack, APPLICANTS, progress)
            try:
                if writes:
                    for one_holder in (True, False):
                        for clients, count in writes.items():
                            if clients == 1 and not one_holder:
                                continue
                            out.writes.append(
                                await http_splits(s, clients, count, one_holder, progress)
                            )
                    self_writes = {c: n for c, n in writes.items() if c in SELF_CLIENTS}
                    out.writes += await self_custody_splits(
                        stack, s, self_writes, Path(directory), progress
                    )
                # Before the hosted operations: their settlement batches move the chain's clock
                # two days on, and a signer checking an intent's deadline against its own
                # clock rightly refuses one that stays valid that long.
                if self_counts is not None:
                    out.writes += await self_figures(stack, s, self_counts, progress, out.failures)
                if operations is not None:
                    out.writes += await operation_figures(
                        stack.rpc_url, s, operations, progress, out.failures
                    )
                out.reads = await reads(stack, s, workers, rates, seconds, progress)
            finally:
                await s.close()
    return out


async def reads(
    stack: Stack,
    s: Seed,
    workers: int,
    rates: tuple[float, ...],
    seconds: float,
    progress: Progress,
) -> list[ReadFigure]:
    endpoints = [
        ("GET /v1/deployment (floor)", "/v1/deployment"),
        ("GET /v1/claims/{id}", f"/v1/claims/{s.claim_id}"),
        ("GET /v1/payables/{id}/tree (50 pieces)", f"/v1/payables/{s.payable_id}/tree"),
        (
            "GET /v1/audit/events?claim_id=…",
            f"/v1/audit/events?claim_id={s.events_claim_id}&limit=200",
        ),
        ("GET /v1/payables?limit=20", "/v1/payables?limit=20"),
    ]
    out: list[ReadFigure] = []
    headers: dict[str, str] = {"Authorization": f"Bearer {s.reader.key}"}
    async with aiohttp.ClientSession(
        base_url=stack.base_url,
        headers=headers,
        connector=aiohttp.TCPConnector(limit=512, keepalive_timeout=2.0),
        timeout=aiohttp.ClientTimeout(total=TIMEOUT_S),
    ) as client:
        for name, path in endpoints:
            await wait_idle(client)
            alone = await service_time(client, path, 2.0)
            for rate in rates:
                await wait_idle(client)
                before = load_average()
                # In a process of its own: not paused by this one's collector over every
                # figure so far, or by its other threads (bench.open_loop_apart).
                run = await open_loop_apart(
                    stack.base_url, headers, name, path, rate, seconds, 1.0, progress
                )
                run.service = alone
                out.append(ReadFigure.of(run, workers, before))
    return out
