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

The mirror (:mod:`backend.gateway.mirror_watch`). A mined write waits (at most
``mirror_wait_s``) for the mirror's checkpoint to reach its block, and for the mirror's header
at that height to be the receipt's block (not one of a lost branch), through one
:class:`~backend.gateway.mirror_watch.MirrorWatch` per worker. When the wait runs out the write
still answers the chain's result, flagged ``mirror_behind``
(:attr:`~backend.ports.WriteContext.mirror_behind`).

``self`` members (docs/consent.md). The platform holds no key of theirs: :meth:`Gateway.submit`
records an intent for the member to sign and raises :class:`~backend.ports.SignatureRequired`
(:mod:`backend.gateway.intents`); when the write is resumed with the signature, the relayer
sends the request as signed (:mod:`backend.gateway.relay`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from eth_typing import HexStr
from eth_utils.address import to_checksum_address
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from web3.exceptions import TransactionNotFound
from web3.types import TxReceipt

from backend.chain_errors import NODE_DOWN_ERRORS
from backend.errors import Conflict
from backend.gateway import relay
from backend.gateway.intents import Intents
from backend.gateway.latest_block import LatestBlock
from backend.gateway.mirror_watch import MirrorWatch
from backend.gateway.receipts import decoded_events
from backend.gateway.sending import WriteSender
from backend.keystore import Keystore, keyfiles
from backend.models import MemberProfile
from backend.nonces import SqlNonceStore
from backend.ports import HostedAccount, Mined, WriteContext
from ledger.anvil import ANVIL_CHAIN_ID
from ledger.artifacts import load_artifact
from ledger.bindings import ClaimView, Suite
from ledger.calls import ContractCall
from ledger.codec import DecodedEvent, Decoder
from ledger.deployment import Deployment
from ledger.errors import ChainUnavailableError
from ledger.node import Web3Client, lean, rpc
from ledger.sender import GasEstimates, TransactionSender

#: Past-due payables whose ``overdueFrom`` is remembered for one block, at most.
CLOCK_CACHE_MAX = 10_000


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
    #: ``overdueFrom`` of past-due payables as read at one block (its hash): a block's state
    #: never changes, so reads at the same head ask the node once per payable, not per read.
    _clock_block: str | None = None
    _clock: dict[int, int] = field(default_factory=dict)

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
        self.intents = Intents(self.w3, self.deployment, self.suite, self.engine, self.chain_id)

    async def close(self) -> None:
        """Release what the gateway holds of its own (the mirror watch's connection, a head
        request in flight)."""
        await self.latest.close()
        await self.watch.close()

    async def sender(self, address: str) -> TransactionSender:
        sender = self._senders.get(address)
        if sender is None:
            account = await self.keystore.account(keyfiles(self.engine), address)
            sender = self._senders[address] = self._new_sender(account)
        return sender

    def _new_sender(self, account: Any) -> TransactionSender:
        """A sender for ``account`` sharing the worker's nonce store and gas estimates."""
        return TransactionSender(
            self.w3,
            account,
            self.nonces,
            gas_estimates=self.gas_estimates,
            receipt_timeout_s=self.receipt_timeout_s,
            unavailable_timeout_s=self.unavailable_s,
        )

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
        if not past_due:
            return out
        block = str(head["hash"]).lower()
        if block != self._clock_block or len(self._clock) > CLOCK_CACHE_MAX:
            self._clock_block, self._clock = block, {}
        clock = self._clock
        missing = [pid for pid in past_due if pid not in clock]
        answers = await asyncio.gather(
            *(
                self.suite.claim_ledger.functions.overdueFrom(pid).call(block_identifier=number)
                for pid in missing
            )
        )
        clock.update(zip(missing, (int(a) for a in answers), strict=True))
        out.update((pid, clock[pid]) for pid in past_due)
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
        row = await self.intents.signed(write, call, self.intent_ttl_s)  # or SignatureRequired
        journal = write.journal
        sent_before = journal is not None and journal.step < len(journal.recorded)
        if not sent_before and (row.contract, row.function) != (call.contract, call.function):
            # Run again with its signature, the write now makes another call than the one
            # signed: the member consented to that call for this write, not to what it now
            # asks, so nothing is relayed (the refusal's answer closes the intent ``failed``,
            # as it does every signed intent of a write refused before anything was sent).
            raise Conflict(
                f"what this write would do changed since its intent was signed (signed: "
                f"{row.function}, now: {call.function}); nothing was sent: make the write again",
                code="intent_stale",
                extra={"intent_id": row.id},
            )
        return await self._relay(write, row)

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
        return self._new_sender(self.relayer)

    async def _relay(self, write: WriteContext, row: Any) -> Mined:
        if self.relayer is None:
            raise Conflict(
                "no relayer key is configured (TIERFLOW_RELAYER_PRIVATE_KEY)",
                code="relayer_missing",
            )
        sender = self._senders.get("relayer")
        if sender is None:
            sender = self._senders["relayer"] = self.relayer_sender()
        tx = relay.execute_fields(row, self.deployment)
        journal = write.journal
        sent_before = journal is not None and journal.step < len(journal.recorded)
        if not sent_before and await relay.paused(self.w3, self.deployment):
            await relay.hold_while_paused(self.engine, row)
        receipt = await self.sending.send(write, sender, tx)
        events = decoded_events(self.decoder, receipt)  # once: the outcome's and the answer's
        await relay.record_outcome(write, self.engine, row, receipt, events)
        return await self._mined(write, receipt, events=events)

    async def _mined(
        self,
        write: WriteContext,
        receipt: TxReceipt,
        wait_for_mirror: bool = True,
        events: tuple[DecodedEvent, ...] | None = None,
    ) -> Mined:
        tx_hash = receipt["transactionHash"].to_0x_hex()
        block = int(receipt["blockNumber"])
        if events is None:
            events = decoded_events(self.decoder, receipt)
        await write.cite(tx_hash)
        block_hash = receipt["blockHash"].to_0x_hex()
        mirrored = await self.wait_for_mirror(block, block_hash) if wait_for_mirror else False
        if wait_for_mirror and not mirrored:
            write.mirror_behind = True
        return Mined(tx_hash, block, events, mirrored)

    async def wait_for_mirror(self, block: int, block_hash: str | None = None) -> bool:
        """Wait (at most ``mirror_wait_s``) until the mirror's checkpoint reaches ``block``
        and, given ``block_hash``, the mirror holds that block there (not a lost branch's)."""
        return await self.watch.wait(block, self.mirror_wait_s, block_hash)

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
