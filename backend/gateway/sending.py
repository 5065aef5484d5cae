"""A write's transactions sent through a member's sender, recorded and cited before they leave
(:class:`WriteSender`), and resumed from the record after a crash.

Idempotency. A write that carries an ``Idempotency-Key`` has a :class:`~backend.ports.TxJournal`
in its :class:`~backend.ports.WriteContext`: every transaction it signs is recorded *before*
its bytes are broadcast. When a write is run again (its worker died, or a reorganisation
removed it), step ``i`` first looks for the first recorded transaction from the ``i``-th on
that makes the same call (recipient, value, data: a run may skip a step another took, as
gas money a member no longer needs, so position alone would hand one call another's
receipt): mined → its receipt is used; known to the node → waited for; unknown → the same
bytes are broadcast again; refused for their fees (dropped, and the base fee rose above their
cap) or waiting below the base fee at the account's next nonce → the same call signed again
at that nonce at current fees (:meth:`~ledger.sender.TransactionSender.refee`), recorded in
the step's place with the signatures it replaces kept beside it
(:attr:`~backend.ports.RecordedTx.replaced`, cited: any may be mined), and whichever is mined
becomes the record; only if its nonce was consumed by another transaction (so it can never
be mined) is a new one signed. A call no earlier run sent is signed and recorded
before the records of the later calls, which stay theirs.

Citations (AP-3). Every transaction's hash is added to the write's ``tx_hashes`` and made
durable (:meth:`~backend.ports.WriteContext.cite`) before its bytes first leave, so the audit
record of the request cites it whatever fails afterwards.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from eth_typing import HexStr
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from web3.exceptions import TransactionNotFound
from web3.types import TxReceipt

from backend.nonces import SqlNonceStore, allocate_in
from backend.ports import RecordedTx, TxJournal, WriteContext
from ledger.node import Web3Client
from ledger.pending import PendingTx
from ledger.reverts import revert_for_failed_transaction
from ledger.sender import CachedGasExhausted, FeeTooLow, TransactionSender
from ledger.signing import same_call

log = logging.getLogger("tierflow.api")


@dataclass
class WriteSender:
    """Sends a write's transactions through members' senders
    (:class:`~ledger.sender.TransactionSender`) and waits for their receipts, with the write's
    journal and citations; one per gateway."""

    w3: Web3Client
    engine: AsyncEngine
    #: The SQL nonce store the gateway's senders share.
    nonces: SqlNonceStore

    async def send(
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
        #: Signed anew at ``step`` before the records of later calls (kept), or in place of
        #: the rest of the journal (a dead transaction: what followed it was never mined).
        slot = _Slot(step)
        if step < len(journal.recorded):
            found = _recorded_call(journal.recorded, step, tx)
            if found is None:
                # No earlier run sent this call (a step it skipped, as gas money a member
                # no longer needs): the later records are later calls'.
                slot.keep_later = True
            else:
                # Records before it are of steps this run skips: never this call's receipt.
                del journal.recorded[step:found]
                receipt = await self._resume(write, sender, journal, step)
                if receipt is not None:
                    return receipt
                del journal.recorded[step:]  # it can never be mined: sign anew from here

        async def record(tx_hash: str, raw: bytes, nonce: int) -> None:
            # The journal's record and the audit citation, both durable before the bytes
            # leave, in one database transaction.
            _place(journal, slot, RecordedTx(tx_hash, "0x" + raw.hex(), nonce))
            await write.record(journal, tx_hash)

        if write.records_in(journal) and sender.nonce_store is self.nonces:
            # The nonce too: allocated, recorded and cited in one database transaction.
            recording = functools.partial(self._recording, write, journal, slot)
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
        self, write: WriteContext, journal: TxJournal, slot: _Slot
    ) -> AsyncIterator[_Recorded]:
        """One database transaction for a signed transaction of ``write``'s step ``slot``: its
        nonce allocated, the journal's record and the audit citation, durable together before
        the bytes leave (:data:`ledger.sender.Recording`)."""
        unit = _Recorded(write, journal, slot)
        try:
            async with self.engine.begin() as conn:
                unit.conn = conn
                yield unit
        except BaseException:
            unit.undo()
            raise

    async def _resume(
        self, write: WriteContext, sender: TransactionSender, journal: TxJournal, step: int
    ) -> TxReceipt | None:
        """The receipt of the transaction an earlier run recorded at ``step`` (under any hash
        it was signed under), or None if it is dead (its nonce consumed by another)."""
        recorded = journal.recorded[step]
        for tx_hash in recorded.hashes:
            await write.cite(tx_hash)
        receipt = await self._mined(recorded)
        if receipt is None:
            raw = bytes.fromhex(recorded.raw[2:])
            try:
                alive = await sender.rebroadcast(raw, recorded.hash)
                if alive and await sender.underpriced(raw):
                    raise FeeTooLow(f"{recorded.hash} waits below the base fee", recorded.hash)
            except FeeTooLow as low:
                # The node dropped it and the base fee rose above its cap (or it waits in the
                # pool below the base fee): the same call at the same nonce, signed again at
                # current fees and recorded beside it; either may be mined.
                log.warning("write %s: %s; signing it again", write.request_id, low)
                alive = await self._refee(write, sender, journal, step)
            if not alive:
                # Its nonce was consumed: by one of its own signatures, perhaps.
                receipt = await self._mined(journal.recorded[step])
                if receipt is None:
                    return None
            else:
                recorded = journal.recorded[step]
                # A reorganisation that took this transaction may have taken the account's
                # earlier ones too, and the node need not send them again: this one would then
                # wait behind their nonces until every retry timed out (503 for ever). Fill
                # the gap; their own writes, retried, are signed anew.
                filled = await sender.fill_gap_below(recorded.nonce)
                if filled:
                    log.warning(
                        "filled %d nonce(s) of %s below %d to resume %s",
                        filled,
                        sender.address,
                        recorded.nonce,
                        recorded.hash,
                    )
                waiting = PendingTx(
                    sender, {}, recorded.nonce, bytes.fromhex(recorded.raw[2:]), recorded.hash
                )
                waiting.hashes = list(reversed(recorded.hashes))  # the newest looked for first
                receipt = await waiting.receipt(sender.receipt_timeout_s)
        mined = receipt["transactionHash"]
        mined_hash = mined if isinstance(mined, str) else "0x" + bytes(mined).hex()
        await self._promote(journal, step, mined_hash)
        if receipt["status"] == 0:
            raise await revert_for_failed_transaction(self.w3, mined_hash)
        return receipt

    async def _mined(self, recorded: RecordedTx) -> TxReceipt | None:
        """The receipt of ``recorded`` under any of its hashes, or None."""
        for tx_hash in recorded.hashes:
            try:
                receipt: TxReceipt = await self.w3.eth.get_transaction_receipt(HexStr(tx_hash))
            except TransactionNotFound:
                continue
            if receipt is not None:
                return receipt
        return None

    async def _refee(
        self, write: WriteContext, sender: TransactionSender, journal: TxJournal, step: int
    ) -> bool:
        """Sign the call recorded at ``step`` again at current fees (the same nonce), its
        record replacing the step's and keeping the earlier ones (and cited) before it leaves;
        False when the nonce was consumed meanwhile."""
        recorded = journal.recorded[step]
        earlier = [RecordedTx(recorded.hash, recorded.raw, recorded.nonce), *recorded.replaced]

        async def record(tx_hash: str, raw: bytes, nonce: int) -> None:
            journal.recorded[step] = RecordedTx(tx_hash, "0x" + raw.hex(), nonce, earlier)
            try:
                await write.record(journal, tx_hash)
            except BaseException:
                journal.recorded[step] = recorded
                raise

        return await sender.refee(bytes.fromhex(recorded.raw[2:]), record) is not None

    @staticmethod
    async def _promote(journal: TxJournal, step: int, mined_hash: str) -> None:
        """The signature that was mined becomes the step's record (the answer and the check
        of a replayed answer against the chain use it); the others stay beside it."""
        recorded = journal.recorded[step]
        if recorded.hash.lower() == mined_hash.lower():
            return
        every = [RecordedTx(recorded.hash, recorded.raw, recorded.nonce), *recorded.replaced]
        mined = next((t for t in every if t.hash.lower() == mined_hash.lower()), None)
        if mined is None:
            return
        others = [t for t in every if t is not mined]
        journal.recorded[step] = RecordedTx(mined.hash, mined.raw, mined.nonce, others)
        await journal.persist(journal)


@dataclass
class _Recorded:
    """A :class:`ledger.sender.Recorder` on the connection of :meth:`WriteSender._recording`."""

    write: WriteContext
    journal: TxJournal
    slot: _Slot
    conn: AsyncConnection | None = None
    cited: str | None = None

    async def allocate(self, chain_id: int, address: str, chain_next: int) -> int:
        assert self.conn is not None
        return await allocate_in(self.conn, chain_id, address, chain_next)

    async def record(self, tx_hash: str, raw: bytes, nonce: int) -> None:
        assert self.conn is not None
        _place(self.journal, self.slot, RecordedTx(tx_hash, "0x" + raw.hex(), nonce))
        if tx_hash not in self.write.tx_hashes:
            self.cited = tx_hash
        await self.write.record_in(self.conn, self.journal, tx_hash)

    def undo(self) -> None:
        """The transaction did not commit: what it cited is not cited."""
        if self.cited is not None:
            self.write.uncite(self.cited)


def _recorded_call(recorded: list[RecordedTx], step: int, tx: dict[str, Any]) -> int | None:
    """The index (``step`` or later) of the first record making the call ``tx``: a run that
    resumes a write matches its calls to the records by what they call, not by position
    alone, since a step may be taken by one run and not another."""
    for index in range(step, len(recorded)):
        if same_call(bytes.fromhex(recorded[index].raw[2:]), tx):
            return index
    return None


def _place(journal: TxJournal, slot: _Slot, tx: RecordedTx) -> None:
    """Record ``tx`` as ``journal``'s step ``slot.step``: before the records of later calls
    (``slot.keep_later``: the first record of the step inserted, a later one, the same
    step signed again, in its place), or replacing the step's record and all after it."""
    recorded, step = journal.recorded, slot.step
    if not slot.keep_later:
        del recorded[step:]
        recorded.append(tx)
    elif slot.placed and step < len(recorded):
        recorded[step] = tx
    else:
        recorded.insert(step, tx)
        slot.placed = True


@dataclass
class _Slot:
    """Where a step's signed transaction goes in the journal (:func:`_place`)."""

    step: int
    keep_later: bool = False
    placed: bool = False
