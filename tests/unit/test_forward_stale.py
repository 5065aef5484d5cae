"""A ``self`` member's write resumed with its signature relays the signed intent only if the
write still makes the call the intent signs (:meth:`backend.gateway.Gateway._forward`): a run
that now makes another call gets 409 ``intent_stale``, nothing is relayed, and the intent is
closed unused (``failed``, no transaction)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.auth import Caller
from backend.errors import Conflict
from backend.gateway import Gateway
from backend.gateway.intents import INTENTS
from backend.ports import Mined, WriteContext
from ledger import calls

MEMBER = "0x" + "11" * 20


class SignedIntents:
    """The intent the member signed for this write's first call."""

    def __init__(self, row: Any) -> None:
        self.row = row

    async def signed(self, write: WriteContext, call: Any, ttl_s: int) -> Any:
        return self.row


async def test_a_call_other_than_the_signed_one_is_not_relayed(engine: AsyncEngine) -> None:
    row = {
        "id": "int_00000000000000aa",
        "member": MEMBER,
        "idempotency_key": "k",
        "contract": "ClaimLedger",
        "function": "transferClaim",
        "typed_data": "{}",
        "action": "{}",
        "digest": "0x" + "00" * 32,
        "deadline": 0,
        "status": "signed",
        "signature": "0x" + "11" * 65,
        "tx_hash": None,
        "created_at": 0,
    }
    async with engine.begin() as conn:
        await conn.execute(insert(INTENTS), [row])
        signed = (await conn.execute(select(INTENTS))).one()
    gateway = object.__new__(Gateway)
    gateway.engine = engine
    gateway.intents = SignedIntents(signed)  # type: ignore[assignment]
    relayed: list[Any] = []

    mined = Mined("0x" + "22" * 32, 9, (), True)

    async def relay(write: WriteContext, intent: Any) -> Mined:
        relayed.append(intent)
        return mined

    gateway._relay = relay  # type: ignore[method-assign,assignment]
    write = WriteContext(Caller(MEMBER, frozenset(), "active", "key"))

    with pytest.raises(Conflict) as stale:
        await gateway._forward(write, calls.split(7, MEMBER, 5, None))
    assert (stale.value.code, stale.value.extra) == ("intent_stale", {"intent_id": row["id"]})
    assert relayed == []
    async with engine.connect() as conn:
        status, tx = (await conn.execute(select(INTENTS.c.status, INTENTS.c.tx_hash))).one()
    assert (status, tx) == ("failed", None)

    # The call it signs: relayed.
    assert await gateway._forward(write, calls.transfer_claim(7, MEMBER, None)) is mined
    assert relayed == [signed]
