"""Relaying a ``self`` member's signed intent (docs/consent.md): the forwarder's
``execute(request)`` sent by the relayer (recorded in the journal like any transaction), held
back while the platform is paused, and its outcome recorded on the intent.

The forwarder's ``ForwardRequestExecuted`` says whether the inner call succeeded; a failed one
raises its decoded :class:`~ledger.errors.ContractRevert` (its nonce is spent: the signature
cannot be replayed). What is relayed is always the request as signed, never a call computed
again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from eth_utils.crypto import keccak
from sqlalchemy import bindparam
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from web3.types import TxReceipt

from backend import forwarding
from backend.errors import PlatformPaused
from backend.gateway.intents import INTENTS
from backend.models import IntentRow
from backend.ports import WriteContext
from db.types import table_of
from ledger.codec import DecodedEvent
from ledger.deployment import Deployment
from ledger.errors import ContractRevert
from ledger.node import Web3Client, lean
from ledger.reverts import decode_revert

#: A relay's outcome on its intent, built once.
_OUTCOME = (
    INTENTS.update()
    .where(INTENTS.c.id == bindparam("p_id"))
    .values(status=bindparam("p_status"), tx_hash=bindparam("p_tx"))
)
#: ``MemberRegistry.paused()``'s calldata (its selector).
_PAUSED = "0x" + keccak(text="paused()")[:4].hex()


def execute_fields(row: Any, deployment: Deployment) -> dict[str, Any]:
    """The relayer's transaction: the forwarder's ``execute`` of the intent ``row``'s request,
    as its member signed it."""
    message = json.loads(row.typed_data)["message"]
    request = (
        message["from"],
        message["to"],
        int(message["value"]),
        int(message["gas"]),
        int(message["nonce"]),
        int(message["deadline"]),
        bytes.fromhex(message["data"][2:]),
        bytes.fromhex(row.signature[2:]) if row.signature else b"",
    )
    return {
        "to": forwarding.checksum(deployment.address("TierflowForwarder")),
        "data": forwarding.execute_calldata(request),
    }


async def paused(w3: Web3Client, deployment: Deployment) -> bool:
    """``MemberRegistry.paused()`` at the latest block, over raw JSON-RPC."""
    members = deployment.address("MemberRegistry")
    answer = await lean(w3).call("eth_call", [{"to": members, "data": _PAUSED}, "latest"])
    return bool(int(answer, 16))


async def hold_while_paused(engine: AsyncEngine, row: Any) -> None:
    """The platform is paused: the forwarder would spend the member's nonce on a call the
    pause refuses, so nothing is sent. The intent is open again (its signature dropped,
    its nonce unspent) and the write waits; the member's signature, posted again after
    the unpause, relays it. A pause mined between this check and the relayed request
    still fails that request (``platform_paused``, 409, its nonce spent)."""
    async with engine.begin() as conn:
        await conn.execute(
            table_of(IntentRow)
            .update()
            .where(IntentRow.id == row.id, IntentRow.status == "signed")
            .values(status="open", signature=None)
        )
    raise PlatformPaused(
        "the platform is paused: the signed request was not relayed and the intent is "
        "still open; sign it again once the platform is unpaused",
        extra={"intent_id": row.id},
    )


async def record_outcome(
    write: WriteContext,
    engine: AsyncEngine,
    row: Any,
    receipt: TxReceipt,
    events: Sequence[DecodedEvent],
) -> None:
    """The relay's outcome on the intent ``row`` (``done`` or ``failed``, with the relay's
    transaction), from ``receipt`` and its decoded ``events``; a failed inner call raises its
    decoded :class:`~ledger.errors.ContractRevert`."""
    journal = write.journal
    tx_hash = receipt["transactionHash"].to_0x_hex()
    executed = [ev for ev in events if ev.key == "TierflowForwarder:ForwardRequestExecuted"]
    success = bool(executed and executed[0].args["success"])
    outcome = {"p_id": row.id, "p_status": "done" if success else "failed", "p_tx": tx_hash}
    if journal is not None and journal.persist_in is not None:
        # Recorded with the write's answer (success or refusal), in its transaction. Until
        # then the intent is ``signed``; a retry that resumes the write finds the relay in
        # the journal and records the outcome then.
        async def record(conn: AsyncConnection) -> None:
            await conn.execute(_OUTCOME, outcome)

        journal.at_answer.append(record)
    else:
        async with engine.begin() as conn:
            await conn.execute(_OUTCOME, outcome)
    if not success:
        data = executed[0].args["returndata"] if executed else b""
        raw = data if isinstance(data, bytes) else bytes.fromhex(str(data).removeprefix("0x"))
        raise ContractRevert(decode_revert(raw), raw, tx_hash)
