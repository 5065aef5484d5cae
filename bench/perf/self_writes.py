"""Writes by ``self`` members through HTTP, each signing with the client as a partner's system
does (``POST`` → 202 intent → verify, sign the EIP-712 request → ``POST
/v1/intents/{id}/signature`` → the relayer's ``execute`` mined and mirrored → the write's
answer), on the stack :mod:`bench.perf.api` seeded:

- *splits, many holders*: sixteen ``self`` suppliers, client ``c`` splitting one unit of
  supplier ``c mod 16``'s piece to a hosted applicant (the one-holder figures are
  :func:`bench.perf.api.self_custody_splits`);
- *financing applications*: the sixteen apply on their pieces to the hosted financier;
- *approvals*: a ``self`` bank approves applications made to it by the sixteen, under its
  credit line for their obligor (one signer, as the hosted approvals' figure).

Keys are made in this process (:class:`client.signing.KeyfileSigner` over a fresh key: the
same signing as from a key file, without scrypt per member). Each figure's ratio is to the
chain's ceiling for the same operation in the same run, as the hosted figures' are: the
ceiling sends the members' own transactions, a ``self`` write goes through the forwarder.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from eth_account import Account
from rich.progress import Progress

from bench.api_load import APPLICATION_AMOUNT, KYC, TIMEOUT_S, Seed
from bench.http_actor import Actor
from bench.perf.api_writes import CREDIT, RATE_BPS, closed_loop
from bench.perf.figures import Rate
from bench.stack import Stack
from client import TierflowClient
from client.signing import KeyfileSigner

#: Units each ``self`` supplier is given: its splits and applications draw on them.
SELF_SHARE = 400 * APPLICATION_AMOUNT


@dataclass(frozen=True)
class SelfCounts:
    """Writes per figure at :attr:`clients` clients (0 leaves a figure out)."""

    splits: int = 192
    applications: int = 192
    approvals: int = 192
    clients: int = 16
    members: int = 16


@dataclass
class SelfMember:
    client: TierflowClient
    address: str
    piece: int = 0


async def onboard(
    stack: Stack, name: str, roles: list[str], seed_clients: list[TierflowClient]
) -> SelfMember:
    """A ``self`` member with a key of its own: the platform is given only its address."""
    signer = KeyfileSigner(Account.create().key)
    async with stack.client(stack.operator_key) as operator:
        r = await operator.post(
            "/v1/members",
            json={"name": name, "roles": roles, "kyc_expires_at": KYC, "address": signer.address},
            headers=Stack.idem(),
        )
        r.raise_for_status()
        api_key = r.json()["api_key"]
    tf = TierflowClient(stack.base_url, api_key, signer=signer, timeout=TIMEOUT_S)
    seed_clients.append(tf)
    return SelfMember(tf, signer.address)


async def self_figures(
    stack: Stack, s: Seed, counts: SelfCounts, progress: Progress, failures: list[str]
) -> list[Rate]:
    """The figures of :class:`SelfCounts`; one that fails is recorded in ``failures`` and the
    others still run (approvals need the applications made to the ``self`` bank)."""
    out: list[Rate] = []
    clients: list[TierflowClient] = []
    try:
        n = min(counts.members, len(s.applicants))
        members = [
            await onboard(stack, f"Bench Self Supplier {i}", ["supplier"], clients)
            for i in range(n)
        ]
        bank = await onboard(stack, "Bench Self Bank", ["financier"], clients)

        async def give(i: int) -> None:  # hosted applicant i gives self supplier i a piece
            actor, piece = s.applicants[i]
            made = await actor.post(
                f"/v1/claims/{piece}/transfers", {"to": members[i].address, "amount": SELF_SHARE}
            )
            members[i].piece = int(made["claim_id"])

        await asyncio.gather(*(give(i) for i in range(n)))
        for m in members:  # uncounted: each client reads and pins the deployment once
            await m.client.trusted_deployment()
        await bank.client.trusted_deployment()

        async def figure(name: str, work: Callable[[], Awaitable[Rate]]) -> bool:
            try:
                out.append(await work())
            except Exception as exc:
                failures.append(f"HTTP self custody {name}: {type(exc).__name__}: {exc}")
                return False
            return True

        if counts.splits:
            await figure("splits", lambda: splits(s, members, counts, progress))
        made: list[int] = []
        if counts.applications:
            await figure(
                "applications", lambda: applications(members, bank, counts, progress, made)
            )
        if counts.approvals and made:
            await figure("approvals", lambda: approvals(s, bank, counts, progress, made))
    finally:
        for tf in clients:
            await tf.aclose()
    return out


def _rate(operation: str, clients: int, holders: int, count: int) -> Rate:
    label = "one holder" if holders == 1 else "many holders"
    return Rate(
        f"{operation} · HTTP self custody · {clients} clients · {label}",
        operation,
        "http-self",
        clients=clients,
        holders=holders,
        count=count,
    )


async def splits(
    s: Seed, members: list[SelfMember], counts: SelfCounts, progress: Progress
) -> Rate:
    n = len(members)
    rate = _rate("split", counts.clients, min(counts.clients, n), counts.splits)

    async def one(c: int, _i: int) -> None:
        m = members[c % n]
        to: Actor = s.applicants[c % n][0]
        made = await m.client.claims.transfer(m.piece, to=to.address, amount=1)
        if made.kind != "split":
            raise RuntimeError(f"a one-unit transfer came back {made.kind}")

    return await closed_loop(rate, counts.clients, one, progress)


async def applications(
    members: list[SelfMember],
    bank: SelfMember,
    counts: SelfCounts,
    progress: Progress,
    made: list[int],
) -> Rate:
    """Applications by the ``self`` suppliers to the ``self`` bank; their ids go into ``made``."""
    n = len(members)
    rate = _rate("application", counts.clients, min(counts.clients, n), counts.applications)

    async def one(c: int, _i: int) -> None:
        m = members[c % n]
        answer = await m.client.financing.apply(
            claim_id=m.piece, financier=bank.address, amount=APPLICATION_AMOUNT
        )
        if answer.status != "applied":
            raise RuntimeError(f"an application came back {answer.status}")
        made.append(int(answer.id))

    return await closed_loop(rate, counts.clients, one, progress)


async def approvals(
    s: Seed, bank: SelfMember, counts: SelfCounts, progress: Progress, made: list[int]
) -> Rate:
    """The ``self`` bank approves the applications made to it, under its credit line."""
    if s.core is None:
        raise RuntimeError("the seed has no obligor")
    await bank.client.credit_lines.set(s.core.address, CREDIT, registration_no="BENCH-REG-SELF")
    financings = made[: counts.approvals]
    rate = _rate("approval", counts.clients, 1, len(financings))

    async def one(_c: int, i: int) -> None:
        fid = financings[i]
        answer = await bank.client.financing.approve(
            fid, annual_rate_bps=RATE_BPS, disbursement_ref=f"BENCH-SELF-PAY-{fid}"
        )
        if answer.status != "approved":
            raise RuntimeError(f"an approval came back {answer.status}")

    return await closed_loop(rate, counts.clients, one, progress)
