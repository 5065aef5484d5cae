"""The ledger port's implementation: send as a member, wait until mined and mirrored, resume.

:class:`Gateway` implements :class:`backend.ports.LedgerPort` over web3. It signs with the
member's own key (from the :class:`~backend.keystore.Keystore`) through a
:class:`~ledger.sender.TransactionSender` per member sharing the SQL nonce store, waits for
the receipt (a revert raises the decoded :class:`~ledger.errors.ContractRevert`), decodes the
receipt's logs with :class:`ledger.codec.Decoder` (the ids a write created come from its
events) and then waits, bounded, until the mirror's checkpoint has passed the block, so a
read that follows sees the write. It holds no session of the service's: it reads keys, nonces
and the checkpoint through short connections of its own.

Idempotency. A write that carries an ``Idempotency-Key`` has a :class:`~backend.ports.TxJournal`
in its :class:`~backend.ports.WriteContext`: every transaction it signs is recorded *before*
its bytes are broadcast. When a write is run again after its worker died, step ``i`` first
looks at the ``i``-th recorded transaction: mined → its receipt is used; known to the node →
waited for; unknown → the same bytes are broadcast again; only if its nonce was consumed by
another transaction (so it can never be mined) is a new one signed.

Citations (AP-3). Every transaction's hash is added to the write's ``tx_hashes`` and made
durable (:meth:`~backend.ports.WriteContext.cite`) before its bytes first leave, so the audit
record of the request cites it whatever fails afterwards.

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
import contextlib
import functools
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator
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
from backend.keystore import Keystore, keyfiles
from backend.models import IntentRow, MemberProfile
from backend.nonces import SqlNonceStore, allocate_in
from backend.ports import (
    HostedAccount,
    Mined,
    RecordedTx,
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
from ledger.reverts import decode_revert, revert_for_failed_transaction, revert_from_exception
from ledger.sender import CachedGasExhausted, GasEstimates, TransactionSender

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
        receipt = await self._send(write, sender, tx)
        return await self._mined(write, receipt)

    async def send_value(self, write: WriteContext, to: str, value: int) -> Mined:
        """A plain transfer (gas money for a new member where gas has a price)."""
        sender = await self.sender(write.caller.address)
        receipt = await self._send(write, sender, {"to": to, "value": value, "gas": 21_000})
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
        receipt = await self._send(write, sender, tx)
        tx_hash = receipt["transactionHash"].to_0x_hex()
        executed = [
            ev
            for ev in (
                self.decoder.decode(_log_json(log)) for log in receipt["logs"] if self._ours(log)
            )
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

    # -- sending -------------------------------------------------------------------------------

    async def _send(
        self,
        write: WriteContext,
        sender: TransactionSender,
        tx: dict[str, Any],
    ) -> TxReceipt:
        journal = write.journal
        if journal is None:

            async def cite(tx_hash: str, raw: bytes, nonce: int) -> None:
                await write.cite(tx_hash)

            try:
                return await sender.wait(await sender.send(tx, before_broadcast=cite))
            except CachedGasExhausted:
                return await sender.wait(await sender.send_estimated(tx, before_broadcast=cite))
        step = journal.step
        journal.step += 1
        if step < len(journal.recorded):
            receipt = await self._resume(write, sender, journal.recorded[step])
            if receipt is not None:
                return receipt
            del journal.recorded[step:]  # it can never be mined: sign anew from here

        async def record(tx_hash: str, raw: bytes, nonce: int) -> None:
            # The journal's record and the audit citation, both durable before the bytes
            # leave, in one database transaction.
            del journal.recorded[step:]
            journal.recorded.append(RecordedTx(tx_hash, "0x" + raw.hex(), nonce))
            await write.record(journal, tx_hash)

        if write.records_in(journal) and sender.nonce_store is self.nonces:
            # The nonce too: allocated, recorded and cited in one database transaction.
            recording = functools.partial(self._recording, write, journal, step)
            send = functools.partial(sender.send, tx, recording=recording)
            resend = functools.partial(sender.send_estimated, tx, recording=recording)
        else:
            send = functools.partial(sender.send, tx, before_broadcast=record)
            resend = functools.partial(sender.send_estimated, tx, before_broadcast=record)
        pending = await send()
        try:
            return await sender.wait(pending)
        except CachedGasExhausted:
            # Out of gas on the cached estimate, nothing done: the same step again, estimated
            # (the record replaces the failed one).
            return await sender.wait(await resend())

    @contextlib.asynccontextmanager
    async def _recording(
        self, write: WriteContext, journal: TxJournal, step: int
    ) -> AsyncIterator[_Recorded]:
        """One database transaction for a signed transaction of ``write``'s step ``step``: its
        nonce allocated, the journal's record and the audit citation, durable together before
        the bytes leave (:data:`ledger.sender.Recording`)."""
        unit = _Recorded(write, journal, step)
        try:
            async with self.engine.begin() as conn:
                unit.conn = conn
                yield unit
        except BaseException:
            unit.undo()
            raise

    async def _resume(
        self, write: WriteContext, sender: TransactionSender, recorded: RecordedTx
    ) -> TxReceipt | None:
        """The receipt of a transaction recorded by an earlier run, or None if it is dead."""
        w3 = self.w3
        await write.cite(recorded.hash)
        try:
            receipt: TxReceipt = await w3.eth.get_transaction_receipt(HexStr(recorded.hash))
        except TransactionNotFound:
            receipt = None  # type: ignore[assignment]
        if receipt is None:
            if not await sender.rebroadcast(bytes.fromhex(recorded.raw[2:]), recorded.hash):
                return None
            # A reorganisation that took this transaction may have taken the account's earlier
            # ones too, and the node need not send them again: this one would then wait behind
            # their nonces until every retry timed out (503 for ever). Fill the gap; their own
            # writes, retried, are signed anew.
            filled = await sender.fill_gap_below(recorded.nonce)
            if filled:
                log.warning(
                    "filled %d nonce(s) of %s below %d to resume %s",
                    filled,
                    sender.address,
                    recorded.nonce,
                    recorded.hash,
                )
            receipt = await w3.eth.wait_for_transaction_receipt(
                HexStr(recorded.hash), timeout=sender.receipt_timeout_s
            )
        if receipt["status"] == 0:
            raise await revert_for_failed_transaction(w3, recorded.hash)
        return receipt

    async def _mined(
        self, write: WriteContext, receipt: TxReceipt, wait_for_mirror: bool = True
    ) -> Mined:
        tx_hash = receipt["transactionHash"].to_0x_hex()
        block = int(receipt["blockNumber"])
        events = tuple(
            self.decoder.decode(_log_json(log)) for log in receipt["logs"] if self._ours(log)
        )
        await write.cite(tx_hash)
        mirrored = await self.wait_for_mirror(block) if wait_for_mirror else False
        if wait_for_mirror and not mirrored:
            write.mirror_behind = True
        return Mined(tx_hash, block, events, mirrored)

    def _ours(self, log: Any) -> bool:
        return str(log["address"]).lower() in self.decoder.addresses

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


@dataclass
class _Recorded:
    """A :class:`ledger.sender.Recorder` on the connection of :meth:`Gateway._recording`."""

    write: WriteContext
    journal: TxJournal
    step: int
    conn: AsyncConnection | None = None
    cited: str | None = None

    async def allocate(self, chain_id: int, address: str, chain_next: int) -> int:
        assert self.conn is not None
        return await allocate_in(self.conn, chain_id, address, chain_next)

    async def record(self, tx_hash: str, raw: bytes, nonce: int) -> None:
        assert self.conn is not None
        del self.journal.recorded[self.step :]
        self.journal.recorded.append(RecordedTx(tx_hash, "0x" + raw.hex(), nonce))
        if tx_hash not in self.write.tx_hashes:
            self.cited = tx_hash
        await self.write.record_in(self.conn, self.journal, tx_hash)

    def undo(self) -> None:
        """The transaction did not commit: what it cited is not cited."""
        if self.cited is not None:
            self.write.uncite(self.cited)


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


def _log_json(log: Any) -> dict[str, Any]:
    """A receipt log (web3 types) in the JSON-RPC shape the decoder reads."""

    def hx(value: Any) -> str:
        return value.to_0x_hex() if hasattr(value, "to_0x_hex") else str(value)

    return {
        "address": str(log["address"]),
        "topics": [hx(t) for t in log["topics"]],
        "data": hx(log["data"]),
        "blockNumber": hex(int(log["blockNumber"])),
        "blockHash": hx(log["blockHash"]),
        "transactionHash": hx(log["transactionHash"]),
        "transactionIndex": hex(int(log["transactionIndex"])),
        "logIndex": hex(int(log["logIndex"])),
    }


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
