"""A ``self`` member's write resumed with its signature relays the signed intent only if the
write still makes the call the intent signs (:meth:`backend.gateway.Gateway._forward`): a run
that now makes another call gets 409 ``intent_stale`` and nothing is relayed. (The refusal's
answer closes the intent ``failed``, as for any write refused before anything of it was sent:
``tests/api/test_intents.py``.)"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from backend.auth import Caller
from backend.errors import Conflict
from backend.gateway import Gateway
from backend.ports import Mined, WriteContext
from ledger import calls

MEMBER = "0x" + "11" * 20


class SignedIntents:
    """The intent the member signed for this write's first call."""

    def __init__(self, row: Any) -> None:
        self.row = row

    async def signed(self, write: WriteContext, call: Any, ttl_s: int) -> Any:
        return self.row


async def test_a_call_other_than_the_signed_one_is_not_relayed() -> None:
    signed = SimpleNamespace(
        id="int_00000000000000aa", contract="ClaimLedger", function="transferClaim"
    )
    gateway = object.__new__(Gateway)
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
    assert (stale.value.code, stale.value.extra) == ("intent_stale", {"intent_id": signed.id})
    assert relayed == []

    # The call it signs: relayed.
    assert await gateway._forward(write, calls.transfer_claim(7, MEMBER, None)) is mined
    assert relayed == [signed]
