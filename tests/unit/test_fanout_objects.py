"""A webhook delivery carries the event's object only to an owner who may read that object
(:mod:`backend.webhooks.fanout`): an event one may see can be about an object one may not
(a financing request on a piece of the supplier's lineage tree is the applicant's and the
financier's). And a payable's lifecycle event is about the payable, not its root piece
(:data:`indexer.outbox.PAYABLE_EVENTS`): the CI run that failed on main had a later holder
receive ``PayableIssued`` with the supplier's root piece in it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.models import WebhookDelivery, WebhookEndpoint, migrate
from backend.webhooks.fanout import fan_out
from bench.perf.fanout import endpoint_row
from db.engine import create_engine
from indexer import models
from indexer.outbox import OUTBOX_COLUMNS, outbox_row
from indexer.rows import EVENT_COLUMNS, claim_row, event_row, financing_row, payable_row
from tests.support.fakes import MemoryUnitOfWork, address, event

CORE, A, B, BANK, OUTSIDER = (address(n) for n in ("core", "sup1", "sup2", "bank", "stranger"))
DUE = 1_900_000_000


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """On SQLite and on PostgreSQL (the fan-out's statement is built once, its member a
    bound parameter)."""
    made = create_engine(database_url, lock_wait_s=5.0)
    await migrate(made)
    try:
        yield made
    finally:
        await made.dispose()


def endpoint(owner: str) -> dict[str, Any]:
    return endpoint_row(f"we_{owner[2:10]}", owner)


ZERO = "0x" + "00" * 32


def issued(block: int, payable_id: int, root: int, supplier: str) -> Any:
    return event(
        "ClaimLedger:PayableIssued",
        block=block,
        payableId=payable_id,
        obligor=CORE,
        supplier=supplier,
        rootClaimId=root,
        faceValue=1_000,
        dueDate=DUE,
        clearingAgent="0x" + "00" * 20,
        invoiceIds=[],
        longTerm=False,
    )


def split(block: int) -> Any:
    from_a: dict[str, Any] = {"from": A}  # a Python keyword
    return event(
        "ClaimLedger:ClaimSplit",
        block=block,
        parentId=1,
        claimId=2,
        payableId=1,
        **from_a,
        to=B,
        value=100,
        depth=1,
        invoiceId=ZERO,
    )


def applied(block: int) -> Any:
    return event(
        "FinancingDesk:FinancingApplied",
        block=block,
        financingId=7,
        claimId=2,
        applicant=B,
        financier=BANK,
        amount=100,
        expiresAt=DUE,
        minAdvance=0,
        recourse=False,
    )


async def mirrored(engine: AsyncEngine) -> None:
    """A payable of CORE to A (root piece 1), a piece 2 split off to B, and B's application
    to BANK for financing 7 on it: as the indexer would have mirrored them."""
    uow = MemoryUnitOfWork()
    payable = payable_row(1, CORE, A, 1_000, DUE, 1_700_000_000, None, 1, False, 5)
    root = claim_row(1, 1, None, 0, A, 900, DUE, None, 5)
    piece = claim_row(2, 1, 1, 1, B, 100, DUE, None, 6)
    financing = financing_row(7, 2, B, BANK, CORE, 100, DUE, 7)
    uow.rows["payables"][(1,)] = payable
    uow.rows["claims"][(1,)] = root
    uow.rows["claims"][(2,)] = piece
    uow.rows["financings"][(7,)] = financing
    logs = [issued(5, 1, 1, A), split(6), applied(7)]
    events, entries = [], []
    for ev in logs:
        row = event_row(ev, 1_700_000_000)
        events.append(dict(zip(EVENT_COLUMNS, row, strict=True)))
        entries.append(dict(zip(OUTBOX_COLUMNS, await outbox_row(uow, ev, row), strict=True)))
    async with engine.begin() as conn:
        await conn.execute(insert(models.Payable), [payable])
        await conn.execute(insert(models.Claim), [root, piece])
        await conn.execute(insert(models.Financing), [financing])
        await conn.execute(insert(models.Event), events)
        await conn.execute(insert(models.OutboxEntry), entries)
        await conn.execute(insert(WebhookEndpoint), [endpoint(o) for o in (A, B, BANK, OUTSIDER)])


async def received(engine: AsyncEngine, owner: str) -> dict[str, Any]:
    """What ``owner``'s endpoint was queued: event type → the body's ``data.object``."""
    async with engine.connect() as conn:
        bodies = (
            await conn.execute(
                select(WebhookDelivery.body)
                .where(WebhookDelivery.endpoint_id == endpoint(owner)["id"])
                .order_by(WebhookDelivery.seq)
            )
        ).scalars()
        return {b["type"]: b["data"]["object"] for b in map(json.loads, bodies)}


async def test_an_object_goes_only_to_whoever_may_read_it(engine: AsyncEngine) -> None:
    await mirrored(engine)
    assert await fan_out(engine) == 3

    a = await received(engine, A)
    # The supplier sees its whole tree, B's application on a piece of it included, but the
    # financing itself is B's and the bank's: the event comes without it.
    assert set(a) == {"PayableIssued", "ClaimSplit", "FinancingApplied"}
    assert a["FinancingApplied"] is None
    assert a["ClaimSplit"]["id"] == 2
    assert a["PayableIssued"] == {"type": "payable", **a["PayableIssued"], "id": 1}

    b = await received(engine, B)
    # B, holding a piece, may see the payable, and gets it; never A's root piece.
    assert b["PayableIssued"]["type"] == "payable"
    assert b["ClaimSplit"]["holder"] == B
    assert b["FinancingApplied"]["type"] == "financing"
    assert b["FinancingApplied"]["applicant"] == B
    assert all(o is None or o.get("holder") != A for o in b.values())

    bank = await received(engine, BANK)
    assert bank["FinancingApplied"]["financier"] == BANK
    assert await received(engine, OUTSIDER) == {}


async def test_a_payable_event_is_about_the_payable() -> None:
    uow = MemoryUnitOfWork()
    uow.rows["payables"][(3,)] = payable_row(3, CORE, A, 1_000, DUE, 1, None, 9, False, 5)
    uow.rows["claims"][(9,)] = claim_row(9, 3, None, 0, A, 1_000, DUE, None, 5)
    ev = issued(5, 3, 9, A)
    entry = dict(zip(OUTBOX_COLUMNS, await outbox_row(uow, ev, event_row(ev, 1)), strict=True))
    assert entry["object_key"] == "payable:3"
    assert json.loads(entry["data"])["object"]["root_claim_id"] == 9
