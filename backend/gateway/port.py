"""The ledger port's implementation: send as a member, wait until mined and mirrored, resume.

:class:`Gateway` implements :class:`backend.ports.LedgerPort` over web3. It signs with the
member's own key (from the :class:`~backend.keystore.Keystore`) through a
:class:`~ledger.sender.TransactionSender` per member sharing the SQL nonce store, waits for
the receipt (a revert raises the decoded :class:`~ledger.errors.ContractRevert`), decodes the
receipt's logs with :class:`ledger.codec.Decoder` (the ids a write created come from its
events) and then waits, bounded, until the mirror's checkpoint has passed the block, so a
read that follows sees the write. It holds no session of the service's: it reads keys, nonces
and the checkpoint through short connections of its own.

Sending (:mod:`backend.gateway.sending`): every transaction a write signs is recorded in the
write's journal and cited before its bytes leave, and a write run again resumes from the record.

The mirror. A mined write waits (at most ``mirror_wait_s``) for the mirror's checkpoint to
reach its block through one :class:`MirrorWatch` per worker: on PostgreSQL it is woken by the
indexer's ``NOTIFY`` of each committed checkpoint (one listening connection per worker); on
SQLite a single task polls the checkpoint while someone waits. A burst of writes waiting for a
stopped indexer holds no pooled database connections. When the wait runs out the write still
answers the chain's result, flagged ``mirror_behind``
(:attr:`~backend.ports.WriteContext.mirror_behind`).

``self`` members (docs/consent.md). The platform holds no key of theirs: :meth:`Gateway.submit`
checks the call would succeed as the member (an ``eth_estimateGas`` from the forwarder with
the member appended, as ERC-2771 delivers it; a refusal is answered at once), then records an
**intent** (an EIP-712 ``ForwardRequest`` with a fresh unordered nonce and a deadline of
``TIERFLOW_INTENT_TTL_S`` chain seconds) and raises :class:`~backend.ports.SignatureRequired`.
When the write is resumed with the member's signature, the relayer submits ``execute(request)``
(recorded in the journal like any transaction) and the forwarder's ``ForwardRequestExecuted``
says whether the inner call succeeded; a failed one raises its decoded
:class:`~ledger.errors.ContractRevert` (its nonce is spent: the signature cannot be replayed).
What is relayed is always the request as signed, never a call computed again.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from eth_typing import HexStr
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from web3.exceptions import TransactionNotFound
from web3.types import TxReceipt

from backend import forwarding
from backend.chain_errors import NODE_DOWN_ERRORS
from backend.errors import Conflict, PlatformPaused
from backend.gateway.latest_block import LatestBlock
from backend.gateway.mirror_watch import MirrorWatch
from backend.gateway.receipts import decoded_events
from backend.gateway.sending import WriteSender
from backend.keystore import Keystore, keyfiles
from backend.models import IntentRow, MemberProfile
from backend.nonces import SqlNonceStore
from backend.ports import (
    HostedAccount,
    Mined,
    SignatureRequired,
    TxJournal,
    WriteContext,
)
from db.types import table_of
from ledger.anvil import ANVIL_CHAIN_ID
from ledger.artifacts import load_artifact
from ledger.bindings import ClaimView, Suite
from ledger.calls import ContractCall
from ledger.codec import Decoder
from ledger.deployment import Deployment
from ledger.errors import ChainUnavailableError, ContractRevert
from ledger.jsonrpc import RpcError
from ledger.node import Web3Client, as_web3_error, lean, rpc
from ledger.reverts import decode_revert, revert_from_exception
from ledger.sender import GasEstimates, TransactionSender

log = logging.getLogger("tierflow.api")


@dataclass
class Gateway:
    """Sends members' transactions; one per API worker (a :class:`~backend.ports.LedgerPort`)."""

    w3: Web3Client
    deployment: Deployment
    keystore: Keystore
    engine: AsyncEngine
    mirror_wait_s: float = 15.0
    receipt_timeout_s: float = 30.0
    unavailable_s: float = 10.0
    #: The relayer's account: it pays the gas of ``self`` members' signed requests.
    relayer: Any = None
    intent_ttl_s: int = 900
    _senders: dict[str, TransactionSender] = field(default_factory=dict)
    _custody: dict[str, str] = field(default_factory=dict)
    _local_chain: bool | None = None
    _grace_period: int | None = None
    _chain_id: int | None = None

    def __post_init__(self) -> None:
        self.suite = Suite(self.w3, self.deployment)
        self.decoder = Decoder(
            {
                name: (rec.address, load_artifact(name).abi)
                for name, rec in self.deployment.contracts.items()
            }
        )
        self.nonces = SqlNonceStore(self.engine)
        self.sending = WriteSender(self.w3, self.engine, self.nonces)
        # One gas estimate per call shape for the worker's senders (ledger.sender.GasEstimates):
        # a write that breaks a rule is then refused by its receipt rather than its estimate.
        self.gas_estimates = GasEstimates()
        self.watch = MirrorWatch(self.engine)
        # Raw JSON-RPC: only the head's number and timestamp are read, not the whole block
        # through web3.py's formatters.
        self.latest = LatestBlock(
            lambda: lean(self.w3).call("eth_getBlockByNumber", ["latest", False])
        )

    async def close(self) -> None:
        """Release what the gateway holds of its own (the mirror watch's connection, a head
        request in flight)."""
        await self.latest.close()
        await self.watch.close()

    async def sender(self, address: str) -> TransactionSender:
        sender = self._senders.get(address)
        if sender is None:
            account = await self.keystore.account(keyfiles(self.engine), address)
            sender = self._senders[address] = TransactionSender(
                self.w3,
                account,
                self.nonces,
                gas_estimates=self.gas_estimates,
                receipt_timeout_s=self.receipt_timeout_s,
                unavailable_timeout_s=self.unavailable_s,
            )
        return sender

    # -- LedgerPort ----------------------------------------------------------------------------

    async def submit(self, write: WriteContext, call: ContractCall) -> Mined:
        """Send ``call`` as the write's caller; see the module docstring."""
        if await self.custody(write.caller.address) == "self":
            return await self._forward(write, call)
        sender = await self.sender(write.caller.address)
        tx = self.suite.call_fields(call)
        receipt = await self.sending.send(write, sender, tx)
        return await self._mined(write, receipt)

    async def send_value(self, write: WriteContext, to: str, value: int) -> Mined:
        """A plain transfer (gas money for a new member where gas has a price)."""
        sender = await self.sender(write.caller.address)
        receipt = await self.sending.send(write, sender, {"to": to, "value": value, "gas": 21_000})
        return await self._mined(write, receipt, wait_for_mirror=False)

    def new_account(self) -> HostedAccount:
        account, keyfile = self.keystore.new_account()
        return HostedAccount(to_checksum_address(account.address), keyfile)

    async def chain_time(self) -> int:
        """The latest block's timestamp: the chain's own clock (due dates, tenors)."""
        block = await self.latest.read()
        return int(block["timestamp"], 16)

    async def block_time(self, block_number: int) -> int:
        block = await self.w3.eth.get_block(block_number)
        return int(block["timestamp"])

    async def gas_price(self) -> int:
        return int(await self.w3.eth.gas_price)

    async def balance(self, address: str) -> int:
        return int(await self.w3.eth.get_balance(to_checksum_address(address)))

    async def pending_claim(self, claim_id: int) -> ClaimView:
        return await self.suite.claim(claim_id, "pending")

    async def overdue_from(self, due_dates: dict[int, int]) -> dict[int, int]:
        if not due_dates:
            return {}
        try:
            return await self._overdue_from(due_dates)
        except NODE_DOWN_ERRORS as exc:
            if isinstance(exc, ChainUnavailableError):
                raise
            raise ChainUnavailableError(f"{type(exc).__name__}: {exc}") from exc

    async def _overdue_from(self, due_dates: dict[int, int]) -> dict[int, int]:
        if self._grace_period is None:  # immutable: read once
            self._grace_period = int(await self.suite.claim_ledger.functions.GRACE_PERIOD().call())
        # As chain_time: a list read needs the head's number and time only.
        head = await self.latest.read()
        number, now = int(head["number"], 16), int(head["timestamp"], 16)
        out = {pid: due + self._grace_period for pid, due in due_dates.items() if due >= now}
        past_due = [pid for pid in due_dates if pid not in out]
        answers = await asyncio.gather(
            *(
                self.suite.claim_ledger.functions.overdueFrom(pid).call(block_identifier=number)
                for pid in past_due
            )
        )
        out.update(zip(past_due, (int(a) for a in answers), strict=True))
        return out

    async def head_block(self) -> int:
        return int(await self.w3.eth.block_number)

    async def local_chain(self) -> bool:
        if self._local_chain is None:
            local = self.deployment.chain_id == ANVIL_CHAIN_ID
            if local:  # a Besu network could use 31337 too: ask the node what it is
                local = str(await rpc(self.w3, "web3_clientVersion")).lower().startswith("anvil")
            self._local_chain = local
        return self._local_chain

    async def set_chain_time(self, until: int) -> int:
        await rpc(self.w3, "anvil_setTime", until)
        await rpc(self.w3, "evm_mine")
        return int(await self.w3.eth.block_number)

    # -- self custody: intents and the relayer ------------------------------------------------

    async def custody(self, address: str) -> str:
        """``self`` or ``hosted`` (chosen at onboarding, never changed: kept once read)."""
        known = self._custody.get(address)
        if known is None:
            async with self.engine.connect() as conn:
                found = (
                    await conn.execute(
                        select(MemberProfile.custody).where(MemberProfile.address == address)
                    )
                ).scalar_one_or_none()
            known = found or "hosted"
            if found is not None:
                self._custody[address] = known
        return known

    async def _forward(self, write: WriteContext, call: ContractCall) -> Mined:
        step = write.intent_step
        write.intent_step += 1
        intent_id = write.remembered(f"intent{step}")
        if intent_id is None:
            await self._prepare_intent(write, call, step)  # raises SignatureRequired
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(_INTENTS).where(_INTENTS.c.id == intent_id))).first()
        if row is None:
            raise LookupError(f"intent {intent_id} of this write is gone")
        if row.signature is None:
            raise SignatureRequired({"status": "awaiting_signature", "intent": intent_view(row)})
        return await self._relay(write, row)

    async def _prepare_intent(self, write: WriteContext, call: ContractCall, step: int) -> None:
        member = write.caller.address
        fields = self.suite.call_fields(call)  # ledger.encoding: no web3.py contract function
        to = to_checksum_address(fields["to"])
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
        deadline = int(latest["timestamp"], 16) + self.intent_ttl_s
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
        row = IntentRow(
            id="int_" + secrets.token_hex(8),
            member=member,
            idempotency_key=key,
            contract=call.contract,
            function=call.function,
            typed_data=json.dumps(document),
            action=json.dumps(action),
            digest="0x" + forwarding.request_digest(*request).hex(),
            deadline=deadline,
            status="open",
            created_at=int(time.time()),
        )
        insert = _INTENTS.insert().values(**_columns(row))
        journal = write.journal
        if journal is not None and journal.persist_in is not None:
            # The intent, the write's memo of it and the 202 (stored by the idempotency
            # record) in one transaction: the intent is durable once the 202 is.
            journal.state[f"intent{step}"] = row.id
            persist_in = journal.persist_in

            async def store(conn: AsyncConnection, journal: TxJournal = journal) -> None:
                await conn.execute(insert)
                await persist_in(conn, journal)

            journal.at_answer.append(store)
        else:
            async with self.engine.begin() as conn:
                await conn.execute(insert)
            if journal is not None:
                await journal.remember(**{f"intent{step}": row.id})
        raise SignatureRequired({"status": "awaiting_signature", "intent": intent_view(row)})

    async def chain_id(self) -> int:
        """The node's chain id (the typed data's domain), asked once."""
        if self._chain_id is None:
            self._chain_id = int(await lean(self.w3).call("eth_chainId", []), 16)
        return self._chain_id

    def relayer_sender(self) -> TransactionSender:
        """The relayer's sender. It shares the worker's gas estimates per call shape: the
        intent's own estimate already refused a call that would fail, and a relay short of
        gas fails whole (the forwarder's ``_checkForwardedGas`` consumes all gas rather than
        spend the member's nonce), so it is sent again estimated (``CachedGasExhausted``)."""
        return TransactionSender(
            self.w3,
            self.relayer,
            self.nonces,
            gas_estimates=self.gas_estimates,
            receipt_timeout_s=self.receipt_timeout_s,
            unavailable_timeout_s=self.unavailable_s,
        )

    async def _relay(self, write: WriteContext, row: Any) -> Mined:
        if self.relayer is None:
            raise Conflict(
                "no relayer key is configured (TIERFLOW_RELAYER_PRIVATE_KEY)",
                code="relayer_missing",
            )
        sender = self._senders.get("relayer")
        if sender is None:
            sender = self._senders["relayer"] = self.relayer_sender()
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
        tx = {
            "to": to_checksum_address(self.deployment.address("TierflowForwarder")),
            "data": forwarding.execute_calldata(request),
        }
        journal = write.journal
        sent_before = journal is not None and journal.step < len(journal.recorded)
        if not sent_before and await self._paused():
            await self._hold_while_paused(row)
        receipt = await self.sending.send(write, sender, tx)
        tx_hash = receipt["transactionHash"].to_0x_hex()
        executed = [
            ev
            for ev in decoded_events(self.decoder, receipt)
            if ev.key == "TierflowForwarder:ForwardRequestExecuted"
        ]
        success = bool(executed and executed[0].args["success"])
        outcome = (
            _INTENTS.update()
            .where(_INTENTS.c.id == row.id)
            .values(status="done" if success else "failed", tx_hash=tx_hash)
        )
        if journal is not None and journal.persist_in is not None:
            # Recorded with the write's answer (success or refusal), in its transaction. Until
            # then the intent is ``signed``; a retry that resumes the write finds the relay in
            # the journal and records the outcome then.
            async def record_outcome(conn: AsyncConnection) -> None:
                await conn.execute(outcome)

            journal.at_answer.append(record_outcome)
        else:
            async with self.engine.begin() as conn:
                await conn.execute(outcome)
        if not success:
            data = executed[0].args["returndata"] if executed else b""
            raw = data if isinstance(data, bytes) else bytes.fromhex(str(data).removeprefix("0x"))
            raise ContractRevert(decode_revert(raw), raw, tx_hash)
        return await self._mined(write, receipt)

    async def _paused(self) -> bool:
        """``MemberRegistry.paused()`` at the latest block, over raw JSON-RPC."""
        members = self.deployment.address("MemberRegistry")
        answer = await lean(self.w3).call("eth_call", [{"to": members, "data": _PAUSED}, "latest"])
        return bool(int(answer, 16))

    async def _hold_while_paused(self, row: Any) -> None:
        """The platform is paused: the forwarder would spend the member's nonce on a call the
        pause refuses, so nothing is sent. The intent is open again (its signature dropped,
        its nonce unspent) and the write waits; the member's signature, posted again after
        the unpause, relays it. A pause mined between this check and the relayed request
        still fails that request (``platform_paused``, 409, its nonce spent)."""
        async with self.engine.begin() as conn:
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

    async def _mined(
        self, write: WriteContext, receipt: TxReceipt, wait_for_mirror: bool = True
    ) -> Mined:
        tx_hash = receipt["transactionHash"].to_0x_hex()
        block = int(receipt["blockNumber"])
        events = decoded_events(self.decoder, receipt)
        await write.cite(tx_hash)
        mirrored = await self.wait_for_mirror(block) if wait_for_mirror else False
        if wait_for_mirror and not mirrored:
            write.mirror_behind = True
        return Mined(tx_hash, block, events, mirrored)

    async def wait_for_mirror(self, block: int) -> bool:
        """Wait (at most ``mirror_wait_s``) until the mirror's checkpoint reaches ``block``."""
        return await self.watch.wait(block, self.mirror_wait_s)

    async def mirrored_block(self) -> int | None:
        return await self.watch.read()

    async def canonical(self, tx_hashes: list[str]) -> bool:
        """Are all these transactions mined in blocks the canonical chain still holds?"""
        for tx_hash in tx_hashes:
            try:
                receipt = await self.w3.eth.get_transaction_receipt(HexStr(tx_hash))
            except TransactionNotFound:
                return False
            if receipt is None:
                return False
            block = await self.w3.eth.get_block(int(receipt["blockNumber"]))
            if block is None or block["hash"] != receipt["blockHash"]:
                return False
        return True


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


def _columns(row: IntentRow) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in table_of(IntentRow).columns}


_INTENTS = table_of(IntentRow)
#: ``MemberRegistry.paused()``'s calldata (its selector).
_PAUSED = "0x" + keccak(text="paused()")[:4].hex()
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
