"""The intents of ``self`` members (docs/consent.md): prepared for the member's signature, and
found again signed when the write is resumed (:class:`Intents`).

The platform holds no key of a ``self`` member. A write's call is first checked to succeed as
the member (an ``eth_estimateGas`` from the forwarder with the member appended, as ERC-2771
delivers it; a refusal is answered at once); then an **intent** is recorded (an EIP-712
``ForwardRequest`` with a fresh unordered nonce and a deadline of ``TIERFLOW_INTENT_TTL_S``
chain seconds) and :class:`~backend.ports.SignatureRequired` raised. The signed request is
relayed by :mod:`backend.gateway.relay`.
"""

from __future__ import annotations

import functools
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from eth_utils.crypto import keccak
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from backend import forwarding
from backend.models import IntentRow
from backend.ports import SignatureRequired, TxJournal, WriteContext
from db.types import table_of
from ledger.artifacts import load_artifact
from ledger.bindings import Suite
from ledger.calls import ContractCall
from ledger.deployment import Deployment
from ledger.jsonrpc import RpcError
from ledger.node import Web3Client, as_web3_error, lean
from ledger.reverts import revert_from_exception

INTENTS = table_of(IntentRow)


@dataclass
class Intents:
    """Prepares the intents of ``self`` members' writes and finds them again, signed; one per
    gateway."""

    w3: Web3Client
    deployment: Deployment
    suite: Suite
    engine: AsyncEngine
    #: The node's chain id (the typed data's domain): the gateway's, asked once.
    chain_id: Callable[[], Awaitable[int]]

    async def signed(self, write: WriteContext, call: ContractCall, ttl_s: int) -> Any:
        """The intent of ``write``'s next call, signed by its member: the step's first run
        prepares it, and every run raises :class:`~backend.ports.SignatureRequired` until the
        member has signed it."""
        step = write.intent_step
        write.intent_step += 1
        intent_id = write.remembered(f"intent{step}")
        if intent_id is None:
            await self.prepare(write, call, step, ttl_s)  # raises SignatureRequired
        row = write.signed_intents.get(intent_id)
        if row is None:
            async with self.engine.connect() as conn:
                found = await conn.execute(select(INTENTS).where(INTENTS.c.id == intent_id))
                row = found.first()
        if row is None:
            raise LookupError(f"intent {intent_id} of this write is gone")
        if row.signature is None:
            raise SignatureRequired({"status": "awaiting_signature", "intent": intent_view(row)})
        return row

    async def prepare(self, write: WriteContext, call: ContractCall, step: int, ttl_s: int) -> None:
        member = write.caller.address
        fields = self.suite.call_fields(call)  # ledger.encoding: no web3.py contract function
        to = forwarding.checksum(fields["to"])
        data: bytes = fields["data"]
        forwarder = self.deployment.address("TierflowForwarder")
        node = lean(self.w3)  # raw JSON-RPC: the estimate, the nonce check, the clock
        forwarded = "0x" + (data + bytes.fromhex(member[2:])).hex()
        nonce = forwarding.random_nonce()
        # One JSON-RPC batch: the estimate (a refusal answers at once), a fresh nonce's check
        # and the chain's clock. The batch raises the first error in call order: the
        # estimate's, decoded as a refusal.
        try:
            estimated, used, latest = await node.batch(
                [
                    ("eth_estimateGas", [{"from": forwarder, "to": to, "data": forwarded}]),
                    ("eth_call", [{"to": forwarder, "data": _nonce_used(member, nonce)}, "latest"]),
                    ("eth_getBlockByNumber", ["latest", False]),
                ]
            )
        except RpcError as exc:
            revert = revert_from_exception(as_web3_error(exc))
            if revert is not None:
                raise revert from exc
            raise
        gas = int(estimated, 16) * 13 // 10 + 20_000
        while int(used, 16):  # 2^52 nonces: practically never
            nonce = forwarding.random_nonce()
            used = await node.call(
                "eth_call", [{"to": forwarder, "data": _nonce_used(member, nonce)}, "latest"]
            )
        deadline = int(latest["timestamp"], 16) + ttl_s
        request = (await self.chain_id(), forwarder, member, to, gas, nonce, deadline, data)
        document = forwarding.typed_data(*request)
        action = {
            "contract": call.contract,
            "function": call.function,
            "args": forwarding.plain_args(
                _abi_inputs(call.contract, call.function, len(call.args)), call.args
            ),
        }
        key = write.idempotency_key or ""
        columns = {
            **_NO_COLUMNS,
            "id": "int_" + secrets.token_hex(8),
            "member": member,
            "idempotency_key": key,
            "contract": call.contract,
            "function": call.function,
            "typed_data": json.dumps(document),
            "action": json.dumps(action),
            "digest": "0x" + forwarding.request_digest(*request).hex(),
            "deadline": deadline,
            "status": "open",
            "created_at": int(time.time()),
        }
        row = SimpleNamespace(**columns)
        journal = write.journal
        if journal is not None and journal.persist_in is not None:
            # The intent, the write's memo of it and the 202 (stored by the idempotency
            # record) in one transaction: the intent is durable once the 202 is.
            journal.state[f"intent{step}"] = row.id
            persist_in = journal.persist_in

            async def store(conn: AsyncConnection, journal: TxJournal = journal) -> None:
                await conn.execute(_INSERT, columns)
                await persist_in(conn, journal)

            journal.at_answer.append(store)
        else:
            async with self.engine.begin() as conn:
                await conn.execute(_INSERT, columns)
            if journal is not None:
                await journal.remember(**{f"intent{step}": row.id})
        raise SignatureRequired({"status": "awaiting_signature", "intent": intent_view(row)})


def intent_view(row: Any) -> dict[str, Any]:
    """An intent as the API shows it (SPEC §4)."""
    return {
        "id": row.id,
        "member": row.member,
        "status": row.status,
        "expires_at": _iso(row.deadline),
        "typed_data": json.loads(row.typed_data),
        "digest": row.digest,
        "action": json.loads(row.action),
        "tx_hash": row.tx_hash,
    }


def _iso(seconds: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC).isoformat()


#: An intent's insert, built once (the row's values bound at execution), and every column
#: unset (``signature``, ``tx_hash`` stay NULL until signed and relayed).
_INSERT = INTENTS.insert()
_NO_COLUMNS: dict[str, Any] = {c.key: None for c in INTENTS.columns}


#: ``TierflowForwarder.nonceUsed(address,uint256)``'s selector.
_NONCE_USED = keccak(text="nonceUsed(address,uint256)")[:4]


def _nonce_used(member: str, nonce: int) -> str:
    """The calldata of ``TierflowForwarder.nonceUsed(member, nonce)``."""
    return (
        "0x"
        + (_NONCE_USED + bytes(12) + bytes.fromhex(member[2:]) + nonce.to_bytes(32, "big")).hex()
    )


@functools.cache
def _abi_inputs(contract: str, function: str, arity: int) -> list[dict[str, Any]]:
    """The ABI inputs of ``contract.function`` taking ``arity`` arguments (the artifact read
    once per worker, not per intent)."""
    entry = next(
        e
        for e in load_artifact(contract).abi
        if e.get("type") == "function"
        and e.get("name") == function
        and len(e.get("inputs", [])) == arity
    )
    inputs: list[dict[str, Any]] = entry["inputs"]
    return inputs
