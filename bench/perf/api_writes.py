"""The write operations other than a split through HTTP, hosted, on the stack
:mod:`bench.perf.api` seeded (``bench.api_load.seed``): each answered once mined and mirrored,
as the API does, in a closed loop of ``clients`` concurrent clients; what a figure consumes is
made first, through the API too, and not timed.

- *whole transfers*: ``POST /v1/claims/{id}/transfers`` of a piece's whole amount (the piece
  changes holder): client ``c`` passes a piece of its own back and forth between applicants
  ``c`` and ``c + 1`` (sixteen signers);
- *financing applications*: ``POST /v1/financing-requests``, applicant ``c mod 16`` applying
  on its piece to the hosted financier (no policy: nothing else runs), at 16 and 64 clients:
  the figure of the target "financing applications end to end ≥ 100/s with p99 < 1 s";
- *approvals*: ``POST /v1/financing-requests/{id}/approve`` by the hosted financier (one
  signer) of the applications just made, under a credit line for their obligor;
- *settlement batches*: ``POST /v1/payables/{id}/settlements`` of
  :data:`SETTLEMENT_BATCH` pieces, one payment reference each, by the obligor (one signer),
  on a payable of its own due within two days, the chain's clock then moved past it (last:
  the stack's other payables are due in 90 days and stay as they were).

Each figure's ratio is to the chain's ceiling for the same operation in the same run
(:func:`ceiling_for`), when the run measured one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from rich.progress import Progress

from bench.api_load import APPLICATION_AMOUNT, FACE, Seed
from bench.http_actor import Actor
from bench.perf.figures import Rate, load_average
from ledger.anvil import rpc_call
from ledger.deployment import DAY

#: Pieces settled by one ``POST /v1/payables/{id}/settlements`` (the ceiling's batch too).
SETTLEMENT_BATCH = 50
#: The target for financing applications end to end (issue 13).
APPLICATION_TARGET_RATE = 100.0
APPLICATION_TARGET_P99_S = 1.0
#: The hosted financier's credit line for the obligor and the approvals' rate.
CREDIT = FACE
RATE_BPS = 600
#: Value of each piece passed on whole (fen).
TRANSFER_UNIT = 1


@dataclass(frozen=True)
class OperationCounts:
    """Writes measured per figure: clients → count for applications; the rest at
    :attr:`clients` clients; a count of 0 leaves its figure out. ``workers``: the stack's API
    workers (named in the figures when more than one)."""

    transfers: int = 320
    applications: tuple[tuple[int, int], ...] = ((16, 320), (64, 640))
    approvals: int = 320
    settlement_batches: int = 8
    settlement_clients: int = 4
    clients: int = 16
    workers: int = 1

    @classmethod
    def applications_only(cls, workers: int) -> OperationCounts:
        """Applications at 16 clients only: with two workers on SQLite, 64 clients' writes
        were seen waiting past ``TIERFLOW_API_DATABASE_LOCK_WAIT_S`` for the write lock (503)
        on a loaded machine."""
        return cls(
            transfers=0,
            applications=((16, 320),),
            approvals=0,
            settlement_batches=0,
            workers=workers,
        )


#: ``one(client, i)``: the i-th write of a figure, by client ``client``.
One = Callable[[int, int], Awaitable[None]]


async def closed_loop(
    rate: Rate, clients: int, one: One, progress: Progress, warmups: int = 0
) -> Rate:
    """``rate.count`` writes by ``clients`` concurrent clients, each sending its next once the
    previous one is answered; ``warmups`` uncounted writes per client first, all at once."""
    task = progress.add_task(rate.name, total=rate.count)
    counter = iter(range(warmups * clients, warmups * clients + rate.count))
    if warmups:
        await asyncio.gather(
            *(one(c, c + k * clients) for c in range(clients) for k in range(warmups))
        )

    async def client(c: int) -> None:
        while (i := next(counter, None)) is not None:
            t0 = time.perf_counter()
            await one(c, i)
            rate.latencies.append(time.perf_counter() - t0)
            progress.advance(task)

    rate.load_before = load_average()
    t0 = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)))
    rate.seconds = time.perf_counter() - t0
    rate.load_after = load_average()
    rate.count = len(rate.latencies)
    return rate


def _label(holders: int) -> str:
    return "one holder" if holders == 1 else "many holders"


async def whole_transfers(s: Seed, clients: int, count: int, progress: Progress) -> Rate:
    applicants = [a for a, _ in s.applicants]
    n = len(applicants)
    # Client c's piece: TRANSFER_UNIT split from applicant c's piece to applicant c + 1.
    pieces = await asyncio.gather(
        *(
            _split(s.applicants[c % n][0], s.applicants[c % n][1], applicants[(c + 1) % n])
            for c in range(clients)
        )
    )
    holder = [(c + 1) % n for c in range(clients)]  # who holds client c's piece now
    used = len({c % n for c in range(clients)} | set(holder))
    rate = Rate(
        f"transfer · HTTP · {clients} clients · {_label(used)}",
        "transfer",
        "http",
        clients=clients,
        holders=used,
        count=count,
    )

    async def one(c: int, _i: int) -> None:
        now, other = holder[c], (c % n if holder[c] != c % n else (c + 1) % n)
        made = await applicants[now].post(
            f"/v1/claims/{pieces[c]}/transfers",
            {"to": applicants[other].address, "amount": TRANSFER_UNIT},
        )
        if made["kind"] != "transfer":
            raise RuntimeError(f"a whole piece's transfer came back {made['kind']}")
        holder[c] = other

    return await closed_loop(rate, clients, one, progress, warmups=1)


async def _split(holder: Actor, piece: int, to: Actor, amount: int = TRANSFER_UNIT) -> int:
    made = await holder.post(f"/v1/claims/{piece}/transfers", {"to": to.address, "amount": amount})
    return int(made["claim_id"])


async def applications(
    s: Seed, clients: int, count: int, progress: Progress, made: list[int], workers: int = 1
) -> Rate:
    """Applications by the applicants to the hosted financier; their ids go into ``made``."""
    n = len(s.applicants)
    on = f" · {workers} workers" if workers > 1 else ""
    rate = Rate(
        f"application · HTTP{on} · {clients} clients · {_label(min(clients, n))}",
        "application",
        "http",
        clients=clients,
        holders=min(clients, n),
        count=count,
    )

    async def one(c: int, _i: int) -> None:
        actor, piece = s.applicants[c % n]
        answer = await actor.post(
            "/v1/financing-requests",
            {"claim_id": piece, "financier": s.financier.address, "amount": APPLICATION_AMOUNT},
        )
        if answer["status"] != "applied":
            raise RuntimeError(f"an application came back {answer['status']}")
        made.append(int(answer["id"]))

    return await closed_loop(rate, clients, one, progress)


async def approvals(s: Seed, clients: int, financings: Sequence[int], progress: Progress) -> Rate:
    """The hosted financier approves ``financings`` (pending applications)."""
    if s.core is None:
        raise RuntimeError("the seed has no obligor")
    await s.financier.put(
        f"/v1/credit-lines/{s.core.address}", {"limit": CREDIT, "registration_no": "BENCH-REG-1"}
    )
    rate = Rate(
        f"approval · HTTP · {clients} clients · one holder",
        "approval",
        "http",
        clients=clients,
        holders=1,
        count=len(financings),
    )

    async def one(_c: int, i: int) -> None:
        fid = financings[i]
        answer = await s.financier.post(
            f"/v1/financing-requests/{fid}/approve",
            {"annual_rate_bps": RATE_BPS, "disbursement_ref": f"BENCH-PAY-{fid}"},
        )
        if answer["status"] != "approved":
            raise RuntimeError(f"an approval came back {answer['status']}")

    return await closed_loop(rate, clients, one, progress)


async def settlement_batches(
    stack_rpc: str, s: Seed, clients: int, batches: int, progress: Progress
) -> Rate:
    """``batches`` settlements of :data:`SETTLEMENT_BATCH` pieces each, by the obligor, on a
    payable due within two days whose pieces the payable's supplier split to the applicants;
    the chain's clock is moved past its due date first (the mirror follows)."""
    if s.core is None or s.seeder is None:
        raise RuntimeError("the seed has no obligor")
    supplier = s.reader
    payable = await s.seeder.payable(s.core, supplier, FACE // 10, due_in_s=2 * DAY)
    root = int(payable["root_claim_id"])
    applicants = [a for a, _ in s.applicants]
    prepared = progress.add_task("settlement batches: the pieces", total=batches * SETTLEMENT_BATCH)
    pieces: list[int] = []

    async def splitter(k: int) -> None:
        # one holder's splits one after another (the root is one piece: its value moves)
        for j in range(k, batches * SETTLEMENT_BATCH, len(applicants)):
            pieces.append(await _split(supplier, root, applicants[j % len(applicants)]))
            progress.advance(prepared)

    await asyncio.gather(*(splitter(k) for k in range(len(applicants))))
    await asyncio.to_thread(rpc_call, stack_rpc, "evm_increaseTime", [2 * DAY + 120])
    await asyncio.to_thread(rpc_call, stack_rpc, "evm_mine")
    await _mirror_at_head(stack_rpc, s.core)
    rate = Rate(
        f"settlement batch · HTTP · {clients} clients · one holder · {SETTLEMENT_BATCH} pieces",
        "settlement batch",
        "http",
        clients=clients,
        holders=1,
        count=batches,
    )
    pieces.sort()
    core = s.core

    async def one(_c: int, i: int) -> None:
        chunk = pieces[i * SETTLEMENT_BATCH : (i + 1) * SETTLEMENT_BATCH]
        body = {"items": [{"claim_id": p, "payment_ref": f"BENCH-SETTLE-{p}"} for p in chunk]}
        answer = await core.post(f"/v1/payables/{payable['id']}/settlements", body)
        if len(answer["settlements"]) != len(chunk):
            raise RuntimeError("a settlement batch settled fewer pieces than it listed")

    return await closed_loop(rate, clients, one, progress)


async def _mirror_at_head(rpc: str, reader: Actor, within_s: float = 60.0) -> None:
    """Wait until the API's mirror has the chain's head (the block that moved the clock)."""
    head = int(await asyncio.to_thread(rpc_call, rpc, "eth_blockNumber"), 16)
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        health = await reader.get("/health")
        mirrored = health.get("mirrored_block")
        if mirrored is not None and int(mirrored) >= head:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"the mirror did not reach block {head} within {within_s:.0f} s")


async def operation_figures(
    stack_rpc: str, s: Seed, counts: OperationCounts, progress: Progress, failures: list[str]
) -> list[Rate]:
    """Every operation's figures, in an order that leaves each what it needs; a figure that
    fails is recorded in ``failures`` (with those that needed it) and the others still run."""
    out: list[Rate] = []

    async def figure(name: str, work: Awaitable[Rate]) -> bool:
        try:
            out.append(await work)
        except Exception as exc:
            failures.append(f"HTTP {name}: {type(exc).__name__}: {exc}")
            return False
        return True

    if counts.transfers:
        await figure(
            "whole transfers", whole_transfers(s, counts.clients, counts.transfers, progress)
        )
    made: list[int] = []
    for clients, count in counts.applications:
        await figure(
            f"applications at {clients} clients",
            applications(s, clients, count, progress, made, counts.workers),
        )
    if counts.approvals and made:
        await figure("approvals", approvals(s, counts.clients, made[: counts.approvals], progress))
    if counts.settlement_batches:
        await figure(
            "settlement batches",
            settlement_batches(
                stack_rpc, s, counts.settlement_clients, counts.settlement_batches, progress
            ),
        )
    return out


def ceiling_for(r: Rate, ceilings: Sequence[Rate]) -> float | None:
    """The ceiling of ``r``'s operation measured in the same run: for the same number of
    signers if there is one, else one signer against one and many against many, else any."""
    same = [c for c in ceilings if c.path == "ceiling" and c.operation == r.operation]
    for pick in (
        lambda c: c.holders == r.holders,
        lambda c: (c.holders == 1) == (r.holders == 1),
        lambda _c: True,
    ):
        found = [c for c in same if pick(c)]
        if found:
            return found[0].rate
    return None


def application_verdict(rates: Sequence[Rate]) -> str | None:
    """The target's line: the application figures through HTTP against ≥ 100/s with p99 < 1 s
    (met when one of them is)."""
    apps = [r for r in rates if r.operation == "application" and r.path == "http"]
    if not apps:
        return None
    met = any(r.rate >= APPLICATION_TARGET_RATE and r.p99 < APPLICATION_TARGET_P99_S for r in apps)
    figures = "; ".join(
        f"{r.name.split(' · ', 1)[1]} {r.rate:,.0f}/s, p99 {r.p99 * 1000:,.0f} ms" for r in apps
    )
    return (
        f"Financing applications end to end (HTTP, hosted, answered once mined and mirrored; "
        f"target ≥ {APPLICATION_TARGET_RATE:g}/s with p99 < {APPLICATION_TARGET_P99_S:g} s): "
        f"{figures}: {'met' if met else 'not met'}."
    )
