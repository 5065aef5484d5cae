"""Sign locally and send transactions for one member account, without nonce collisions.

Usage::

    w3 = make_web3(settings.rpc_url)
    sender = TransactionSender(w3, Account.from_key(key), FileNonceStore())
    pending = await sender.send({"to": addr, "data": calldata})   # returns once broadcast
    receipt = await pending.receipt()
    receipt = await sender.transact(contract.functions.bump())     # build, send, wait, check
    pendings = await sender.send_many([tx1, tx2, tx3])              # pipelined, nonce order

Nonces. Within a process the senders of an account share one ``asyncio.Lock`` (its
:class:`~ledger.pending.AccountState`), held only while a nonce is allocated: signing, the
caller's record (``before_broadcast``) and the broadcast run outside it, so one write's round
trips overlap with the next one's (broadcasts may reach the node slightly out of nonce order;
the node holds a later nonce until the earlier arrives). The chain's pending count is asked
for the first time a sender allocates and after a conflict, not per transaction. Across
processes the :class:`~ledger.nonces.NonceStore` allocates ``max(stored next, chain
pending)`` under its own lock (:class:`~ledger.nonces.FileNonceStore` for processes on one
host). A nonce whose transaction was never broadcast (the node refused it, the record
failed) is given back to the store, or, when later ones were handed out meanwhile, filled at
once with a zero-value self-transfer. A caller may instead give a :data:`Recording`: its unit
of work (one database transaction) allocates the nonce and records the signed transaction,
durable together or not at all, so a record that fails leaves no nonce to give back.
:meth:`TransactionSender.send_many` holds the lock for its whole batch, which leaves in nonce
order.

Recovery.

- Broadcast rejected with "nonce too low", "already known", "replacement transaction
  underpriced" (or the Besu equivalents): if the node knows *our* hash the broadcast had in
  fact succeeded (a retried request); otherwise the nonce was taken, so the store is resynced
  from the chain's pending nonce and the transaction re-signed with a fresh nonce.
- Connection errors (node restarting): retried with exponential backoff, re-sending the same
  signed bytes (idempotent: same hash) for up to ``unavailable_timeout_s``.
- A transaction not mined after ``stuck_after_s`` triggers a recovery pass for the account:
  transactions the node no longer knows are re-broadcast (same bytes) if their nonce is still
  free, re-signed with a fresh nonce if it was consumed by something else, and, when the node
  lost everything of ours while the chain is behind (a restart that dropped the pool or
  rolled state back), re-signed from the chain's pending nonce in their original order; a gap
  below transactions still waiting in the pool is filled with zero-value self-transfers. One
  whose wait timed out (:attr:`~ledger.pending.PendingTx.abandoned`) and whose nonce was
  consumed is forgotten, not signed anew: its write may have been retried elsewhere and signed
  again under another hash (:meth:`TransactionSender.refee`). A
  lost transaction whose bytes are refused for their fees (the base fee rose above their cap)
  is left alone (logged): only its write, which records the replacement before it leaves,
  signs it again.
- Bytes recorded by a caller, sent again (:meth:`TransactionSender.rebroadcast`): refused for
  their fees → :class:`FeeTooLow`; :meth:`TransactionSender.refee` then signs the same call
  (``to``, value, data, gas, nonce) at current fees, at least :data:`REPLACEMENT_BUMP` above
  its own, lets the caller record it, and broadcasts it; only bytes this sender's key signed.

Fees. The latest block's ``baseFeePerGas`` decides: absent (Besu QBFT with London off,
pre-London forks) means legacy ``gasPrice`` from ``eth_gasPrice`` (often 0 there), present
means EIP-1559 fields. Gas is ``eth_estimateGas`` plus 20% unless given; an estimation that
reverts raises :class:`~ledger.errors.ContractRevert` (decoded through
:func:`ledger.reverts.decode_revert`) and nothing is broadcast. A sender given a shared
:class:`GasEstimates` estimates each call shape once and then reuses the largest estimate
seen (a revert then shows in the receipt, decoded by replay).

Receipts. :meth:`PendingTx.receipt` waits through the connection's
:class:`~ledger.receipts.BlockReceipts` watcher: receipts by block, one head poll for every
waiter, rather than a receipt poll per transaction.

The hot path (the broadcast, the pending nonce, receipts) speaks raw JSON-RPC through the
connection's lean client (:func:`ledger.node.lean`), not web3.py's request stack; a node's
error answer is turned into web3.py's :class:`~web3.exceptions.Web3RPCError` so the recovery
above reads it as before. Call data is encoded by :mod:`ledger.encoding` and transactions
signed by :mod:`ledger.signing` (both fall back to web3.py / eth-account for what they do
not handle); web3.py stays for the rare calls (recovery, fees, estimates).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, TypeVar, cast

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_hash.auto import keccak
from eth_utils.address import to_checksum_address
from web3.exceptions import TransactionNotFound, Web3RPCError
from web3.types import TxParams, TxReceipt

from ledger.encoding import encode_function_call
from ledger.errors import ChainUnavailableError, TransactionError
from ledger.fees import fee_quotes
from ledger.jsonrpc import RpcError
from ledger.node import Web3Client, as_web3_error, lean
from ledger.nonces import MemoryNonceStore, NonceStore
from ledger.pending import (
    CONNECTION_ERRORS,
    AccountState,
    PendingTx,
    account_state,
    is_fee_refusal,
    is_nonce_conflict,
    rpc_error_message,
)
from ledger.reverts import revert_for_failed_transaction, revert_from_exception
from ledger.signing import FastSigner, signed_fields

log = logging.getLogger(__name__)

Receipt = TxReceipt
T = TypeVar("T")
#: ``before_broadcast(tx_hash, raw, nonce)``: see :meth:`TransactionSender.send`.
BeforeBroadcast = Callable[[str, bytes, int], Awaitable[None]]


class Recorder(Protocol):
    """A caller's unit of work for one transaction (see :data:`Recording`)."""

    async def allocate(self, chain_id: int, address: str, chain_next: int) -> int:
        """The next nonce, as :meth:`ledger.nonces.NonceStore.allocate` (``count`` 1), within
        the unit."""
        ...

    async def record(self, tx_hash: str, raw: bytes, nonce: int) -> None:
        """Keep the signed transaction, within the unit (as ``before_broadcast``)."""
        ...


#: Opens a caller's unit of work (one database transaction) for one signed transaction: the
#: nonce is allocated and the transaction recorded in it, made durable together when the unit
#: is left without an error, and neither when left by one (the nonce was never taken: nothing
#: to give back). The sender enters it under the account's lock, once the chain's pending
#: count it may need has been read: nothing inside waits for the node.
Recording = Callable[[], AbstractAsyncContextManager[Recorder]]

GAS_MARGIN = 1.2
MAX_NONCE_ATTEMPTS = 50
#: On a cached estimate (calls of one shape vary: a first-time holder, a longer name).
CACHED_GAS_MARGIN = 1.5
#: A failed transaction that used this share of its gas limit may have run out of gas.
OUT_OF_GAS_SHARE = 0.95
#: ``(to, selector, calldata length, pays value)``: calls of one shape cost about the same.
GasShape = tuple[str, bytes, int, bool]


def _bumped(fee: int) -> int:
    """``fee`` raised enough for a replacement to be taken (:data:`REPLACEMENT_BUMP`)."""
    return int(fee * REPLACEMENT_BUMP) + 1


@functools.lru_cache(maxsize=4096)
def _checksum(address: str) -> str:
    """A checksum address (a keccak each: the same few contracts in every write)."""
    return to_checksum_address(address)


class CachedGasExhausted(TransactionError):
    """A transaction sent with a cached gas estimate ran out of gas (it changed nothing but its
    nonce): send it again with :meth:`TransactionSender.send_estimated`."""

    def __init__(self, message: str, tx_hash: str) -> None:
        super().__init__(message)
        self.tx_hash = tx_hash


class FeeTooLow(TransactionError):
    """Bytes signed earlier were refused for their fees (their cap is below the base fee now):
    only the same call signed again at current fees can be mined at that nonce
    (:meth:`TransactionSender.refee`)."""

    def __init__(self, message: str, tx_hash: str) -> None:
        super().__init__(message)
        self.tx_hash = tx_hash


#: A replacement offers at least this much more than the transaction it replaces (nodes refuse
#: one under +10 %: "replacement transaction underpriced").
REPLACEMENT_BUMP = 1.125


class GasEstimates:
    """The largest ``eth_estimateGas`` answer seen per call shape, shared by the senders of a
    process that opt in: a call of a known shape is sent with that estimate plus the margin,
    without asking the node again. The price: a call that would revert is no longer refused
    before broadcast but mined as a failure (its receipt's status is checked and the revert
    decoded by replay, as for any failed transaction); a failure that used nearly all its gas
    forgets the shape, so the next call of it is estimated afresh."""

    def __init__(self) -> None:
        self._best: dict[GasShape, int] = {}

    @staticmethod
    def shape(tx: Mapping[str, Any]) -> GasShape:
        data = tx.get("data") or b""
        if isinstance(data, str):
            data = bytes.fromhex(data.removeprefix("0x"))
        return (str(tx.get("to") or "").lower(), bytes(data[:4]), len(data), bool(tx.get("value")))

    def get(self, shape: GasShape) -> int | None:
        return self._best.get(shape)

    def record(self, shape: GasShape | None, estimate: int) -> None:
        if shape is not None:
            self._best[shape] = max(estimate, self._best.get(shape, 0))

    def forget(self, shape: GasShape) -> None:
        self._best.pop(shape, None)


class TransactionSender:
    """Signs with a local account and sends, pipelined, without nonce collisions."""

    def __init__(
        self,
        w3: Web3Client,
        account: LocalAccount,
        nonce_store: NonceStore | None = None,
        *,
        gas_margin: float = GAS_MARGIN,
        receipt_timeout_s: float = 120.0,
        poll_interval_s: float = 0.05,
        max_poll_interval_s: float = 1.0,
        stuck_after_s: float = 15.0,
        unavailable_timeout_s: float = 60.0,
        fee_cache_s: float = 1.0,
        gas_estimates: GasEstimates | None = None,
    ) -> None:
        self.w3 = w3
        self.account = account
        self.address = to_checksum_address(account.address)
        self.nonce_store: NonceStore = nonce_store or MemoryNonceStore()
        self.gas_margin = gas_margin
        self.receipt_timeout_s = receipt_timeout_s
        self.poll_interval_s = poll_interval_s
        self.max_poll_interval_s = max_poll_interval_s
        self.stuck_after_s = stuck_after_s
        self.unavailable_timeout_s = unavailable_timeout_s
        self.fee_cache_s = fee_cache_s
        self.gas_estimates = gas_estimates
        self._synced = False  # the store has seen the chain's pending nonce (see _allocate)
        self._chain_id: int | None = None
        key = getattr(account, "key", None)
        self._signer = FastSigner(bytes(key)) if isinstance(key, bytes) and len(key) == 32 else None

    # -- chain facts -----------------------------------------------------------------------

    async def chain_id(self) -> int:
        """The chain id, fetched once."""
        if self._chain_id is None:
            self._chain_id = int(await self._retrying(lambda: self.w3.eth.chain_id))
        return self._chain_id

    async def _state(self) -> AccountState:
        state = account_state(await self.chain_id(), self.address)
        assert state is not None
        return state

    async def fee_fields(self) -> dict[str, int]:
        """``{"gasPrice"}`` on chains without ``baseFeePerGas``, else EIP-1559 fields: the node
        connection's quote (:mod:`ledger.fees`, shared by every sender on it), at most
        ``fee_cache_s`` old."""
        quotes = fee_quotes(self.w3)
        return await self._retrying(lambda: quotes.fields(self.fee_cache_s))

    async def pending_nonce(self) -> int:
        """The chain's transaction count for this account including its pool."""
        rpc = lean(self.w3)
        count = await self._retrying(
            lambda: rpc.call("eth_getTransactionCount", [self.address, "pending"])
        )
        return int(count, 16)

    # -- building --------------------------------------------------------------------------

    async def prepare(self, tx: Mapping[str, Any]) -> dict[str, Any]:
        """Fill everything but the nonce: from, chainId, value, data, fees and gas.

        Raises :class:`ContractRevert` if gas estimation reverts (nothing is broadcast).
        """
        return (await self._prepare(tx))[0]

    async def _prepare(self, tx: Mapping[str, Any]) -> tuple[dict[str, Any], GasShape | None]:
        """:meth:`prepare`, and the call shape whose cached estimate gave the gas (if so)."""
        prepared: dict[str, Any] = {k: v for k, v in tx.items() if k not in ("nonce", "from")}
        prepared.setdefault("value", 0)
        prepared.setdefault("data", b"")
        if prepared.get("to") is not None:
            prepared["to"] = _checksum(prepared["to"])
        else:
            prepared.pop("to", None)
        prepared["chainId"] = await self.chain_id()
        if not any(k in prepared for k in ("gasPrice", "maxFeePerGas")):
            prepared.update(await self.fee_fields())
        shape = None
        if "gas" not in prepared:
            cached = None
            if self.gas_estimates is not None:
                shape = GasEstimates.shape(prepared)
                cached = self.gas_estimates.get(shape)
            if cached is None:
                estimate = await self._estimate(prepared)
                if self.gas_estimates is not None:
                    self.gas_estimates.record(shape, estimate)
                prepared["gas"] = int(estimate * self.gas_margin)
                shape = None
            else:
                prepared["gas"] = int(cached * CACHED_GAS_MARGIN)
        return prepared, shape

    async def estimate_gas(self, tx: Mapping[str, Any]) -> int:
        """``eth_estimateGas`` + margin; a revert becomes :class:`ContractRevert`."""
        return int(await self._estimate(tx) * self.gas_margin)

    async def _estimate(self, tx: Mapping[str, Any]) -> int:
        call: dict[str, Any] = {"from": self.address, "value": tx.get("value", 0)}
        if tx.get("to"):
            call["to"] = tx["to"]
        if tx.get("data"):
            call["data"] = tx["data"]
        try:
            estimate = await self._retrying(lambda: self.w3.eth.estimate_gas(cast(TxParams, call)))
        except CONNECTION_ERRORS:
            raise
        except ChainUnavailableError:
            raise
        except Exception as exc:
            revert = revert_from_exception(exc)
            if revert is not None:
                raise revert from exc
            raise TransactionError(f"gas estimation failed: {exc}") from exc
        return int(estimate)

    def _sign(self, tx: dict[str, Any], nonce: int) -> tuple[bytes, str]:
        if self._signer is not None:
            fast = self._signer.sign(tx, nonce)
            if fast is not None:
                return fast
        signed = self.account.sign_transaction({**tx, "nonce": nonce})
        return bytes(signed.raw_transaction), signed.hash.to_0x_hex()

    # -- sending ---------------------------------------------------------------------------

    async def send(
        self,
        tx: Mapping[str, Any],
        before_broadcast: BeforeBroadcast | None = None,
        *,
        recording: Recording | None = None,
    ) -> PendingTx:
        """Prepare, sign and broadcast one transaction; return once the node accepted it.

        ``before_broadcast(tx_hash, raw, nonce)`` is awaited after each signing and before
        those bytes first leave: a caller that records it durably can, after a crash, find
        the transaction (or re-send the same bytes) instead of sending a second one.
        ``recording`` (instead): the nonce's allocation and that record in one unit of work of
        the caller's (:data:`Recording`).
        """
        prepared, shape = await self._prepare(tx)
        return await self._sign_and_broadcast(
            await self._state(),
            prepared,
            before_broadcast=before_broadcast,
            recording=recording,
            gas_shape=shape,
        )

    async def _sign_and_broadcast(
        self,
        state: AccountState,
        tx: dict[str, Any],
        *,
        before_broadcast: BeforeBroadcast | None = None,
        recording: Recording | None = None,
        gas_shape: GasShape | None = None,
        lock_held: bool = False,
    ) -> PendingTx:
        """The one way a prepared transaction leaves: allocate a nonce, sign, let the caller
        record it (``before_broadcast``), broadcast; a nonce conflict re-signs with a fresh
        nonce, any other refusal gives the nonce back (see :meth:`_give_back`). With
        ``recording`` the allocation, the signing and the record are one unit of the caller's,
        under the account's lock (a unit that fails took no nonce).

        ``lock_held``: the caller holds ``state.lock`` for the whole call (a batch leaving in
        nonce order, recovery); otherwise only the allocation is serialised per account, and
        signing, the record and the broadcast of one send overlap with the next send's.
        """
        chain_id = await self.chain_id()
        for attempt in range(MAX_NONCE_ATTEMPTS):
            if attempt:
                # Someone else keeps taking the nonce (a signer not sharing our store):
                # back off a little, with jitter, so the race does not repeat in lockstep.
                await asyncio.sleep(random.uniform(0, 0.005 * min(attempt, 20)))
            if recording is not None:
                nonce, raw, tx_hash = await self._recorded(
                    state, chain_id, tx, recording, fresh=attempt > 0, lock_held=lock_held
                )
            else:
                if lock_held:
                    nonce = await self._allocate(chain_id, fresh=attempt > 0)
                else:
                    async with state.lock:
                        nonce = await self._allocate(chain_id, fresh=attempt > 0)
                raw, tx_hash = self._sign(tx, nonce)
                if before_broadcast is not None:
                    try:
                        await before_broadcast(tx_hash, raw, nonce)
                    except BaseException:
                        await self._give_back(state, chain_id, nonce, lock_held=lock_held)
                        raise
            try:
                await self._broadcast(raw, tx_hash)
            except Web3RPCError as exc:
                if is_nonce_conflict(exc):
                    log.info(
                        "nonce %d for %s refused (%s); re-signing (attempt %d)",
                        nonce,
                        self.address,
                        rpc_error_message(exc),
                        attempt + 1,
                    )
                    continue  # the next allocation, max(stored, chain pending), is past it
                # The node answered no: the nonce is unused.
                await self._give_back(state, chain_id, nonce, lock_held=lock_held)
                raise self._broadcast_error(exc) from exc
            # Any other failure (node gone, cancelled) may have happened after the node took
            # the transaction: the nonce stays used; recovery fills it if it was not.
            pending = PendingTx(self, tx, nonce, raw, tx_hash)
            pending.gas_shape = gas_shape
            state.inflight[nonce] = pending
            return pending
        raise TransactionError(
            f"could not find a free nonce for {self.address} in {MAX_NONCE_ATTEMPTS} tries"
        )

    async def _recorded(
        self,
        state: AccountState,
        chain_id: int,
        tx: dict[str, Any],
        recording: Recording,
        *,
        fresh: bool,
        lock_held: bool,
    ) -> tuple[int, bytes, str]:
        """``(nonce, raw, hash)``: allocated, signed and recorded in one unit of the caller's,
        under the account's lock (so this worker's next allocation waits here, not on the
        database's lock); a unit that fails took no nonce."""
        async with contextlib.AsyncExitStack() as held:
            if not lock_held:
                await held.enter_async_context(state.lock)
            chain_next = await self._chain_next(fresh)
            async with recording() as unit:
                nonce = await unit.allocate(chain_id, self.address, chain_next)
                raw, tx_hash = self._sign(tx, nonce)
                await unit.record(tx_hash, raw, nonce)
        return nonce, raw, tx_hash

    async def _allocate(self, chain_id: int, fresh: bool) -> int:
        """The next nonce from the store (the chain's pending count: :meth:`_chain_next`)."""
        chain_next = await self._chain_next(fresh)
        return await self.nonce_store.allocate(chain_id, self.address, chain_next)

    async def _chain_next(self, fresh: bool) -> int:
        """The chain's pending count for an allocation, asked for only the first time (per
        sender) and after a conflict: on the way, the store knows better (0)."""
        if fresh or not self._synced:
            chain_next = await self.pending_nonce()
            self._synced = True
            return chain_next
        return 0

    async def _give_back(
        self, state: AccountState, chain_id: int, nonce: int, *, lock_held: bool = False
    ) -> None:
        """Return a nonce that was never broadcast; if later ones were handed out meanwhile,
        fill it with a zero-value self-transfer so they are not stuck behind a gap."""
        if await self.nonce_store.release(chain_id, self.address, nonce):
            return
        if lock_held:
            await self._fill_gap(state, nonce, nonce + 1)
            return
        async with state.lock:
            await self._fill_gap(state, nonce, nonce + 1)

    async def send_many(self, txs: Sequence[Mapping[str, Any]]) -> list[PendingTx]:
        """Broadcast several transactions in nonce order without waiting for receipts.

        Gas is estimated for each up front (against current state): give ``gas`` explicitly
        for a transaction that only succeeds after an earlier one of the batch.
        """
        prepared = list(await asyncio.gather(*(self._prepare(t) for t in txs)))
        state = await self._state()
        async with state.lock:  # the whole batch in nonce order
            return [
                await self._sign_and_broadcast(state, p, gas_shape=shape, lock_held=True)
                for p, shape in prepared
            ]

    async def transact(
        self,
        fn: Any,
        tx: Mapping[str, Any] | None = None,
        before_broadcast: BeforeBroadcast | None = None,
    ) -> TxReceipt:
        """Send a contract function call, wait for it, raise :class:`ContractRevert` on failure.

        ``fn`` is a bound contract function (``contract.functions.name(args)``); ``tx`` may
        add ``value``, ``gas`` or fee fields; ``before_broadcast`` as for :meth:`send`.
        """
        return await self.transact_fields({**(tx or {}), **self._encode_call(fn)}, before_broadcast)

    async def transact_fields(
        self, fields: Mapping[str, Any], before_broadcast: BeforeBroadcast | None = None
    ) -> TxReceipt:
        """:meth:`transact` for transaction fields already encoded (``to``, ``data``, e.g.
        :meth:`ledger.bindings.Suite.call_fields`): send, wait, and send again estimated if
        a cached gas estimate ran out."""
        pending = await self.send(fields, before_broadcast)
        try:
            return await self.wait(pending)
        except CachedGasExhausted:
            return await self.wait(await self.send_estimated(fields, before_broadcast))

    async def send_estimated(
        self,
        tx: Mapping[str, Any],
        before_broadcast: BeforeBroadcast | None = None,
        *,
        recording: Recording | None = None,
    ) -> PendingTx:
        """:meth:`send` with gas from ``eth_estimateGas`` whatever the cache holds (the resend
        after :class:`CachedGasExhausted`; a call that reverts is refused before broadcast)."""
        gas = tx.get("gas") if "gas" in tx else await self.estimate_gas(tx)
        return await self.send({**tx, "gas": gas}, before_broadcast, recording=recording)

    def encode_call(self, fn: Any, tx: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The transaction fields of a bound contract function call (``to``, ``data``)."""
        return {**(tx or {}), **self._encode_call(fn)}

    async def rebroadcast(self, raw: bytes, tx_hash: str) -> bool:
        """Send bytes signed earlier (found in a record after a crash) once more.

        True when the node has them now (accepted, or already known); False when their nonce
        was consumed by another transaction, so they can never be mined.
        Raises :class:`FeeTooLow` when the node refuses them for their fees (the base fee rose
        above their cap while the node had dropped them): :meth:`refee` signs the call anew.
        """
        try:
            await self._broadcast(raw, tx_hash, maybe_sent=True)
        except Web3RPCError as exc:
            if is_nonce_conflict(exc):
                return await self._known(tx_hash)
            if is_fee_refusal(exc):
                raise FeeTooLow(
                    f"node refused {tx_hash} for its fees: {rpc_error_message(exc)}", tx_hash
                ) from exc
            raise self._broadcast_error(exc) from exc
        return True

    async def underpriced(self, raw: bytes) -> bool:
        """Are the signed bytes ``raw`` (known to the node, unmined) stuck for their fees: their
        nonce is the account's next on chain and their cap below the latest base fee? (A node
        may keep such a transaction in its pool, never mining it while the base fee stays up.)
        """
        fields = signed_fields(raw)
        if fields is None:
            return False
        cap = fields.get("maxFeePerGas", fields.get("gasPrice", 0))
        rpc = lean(self.w3)
        block: Any = await self._retrying(
            lambda: rpc.call("eth_getBlockByNumber", ["latest", False])
        )
        base_fee = (block or {}).get("baseFeePerGas")
        if base_fee is None or cap >= int(base_fee, 16):
            return False
        latest = await self._retrying(
            lambda: rpc.call("eth_getTransactionCount", [self.address, "latest"])
        )
        return int(fields["nonce"]) == int(latest, 16)

    async def refee(
        self, raw: bytes, before_broadcast: BeforeBroadcast | None = None
    ) -> tuple[str, bytes] | None:
        """Sign the call of ``raw`` (signed earlier by this account, unmined) again: the same
        ``to``, ``value``, ``data``, gas and nonce, at current fees (and at least
        :data:`REPLACEMENT_BUMP` times its own, so a node still holding it takes the
        replacement); ``before_broadcast`` records it before it leaves. ``(hash, raw)`` of the
        replacement, broadcast; ``None`` when the nonce was consumed meanwhile (by ``raw``
        itself, perhaps: the caller looks for every hash of the call).

        Only this sender's own transactions are signed again: bytes another key signed (a
        ``self`` member's) raise :class:`TransactionError`. A transaction of this process
        waiting at that nonce (:attr:`AccountState.inflight`) watches the new hash too.
        """
        fields = signed_fields(raw)
        if fields is None:
            raise TransactionError("cannot read the recorded transaction to sign it again")
        signer = to_checksum_address(Account.recover_transaction(raw))
        if signer != self.address:
            raise TransactionError(
                f"the recorded transaction was signed by {signer}, not {self.address}: "
                "only the platform's own transactions are signed again"
            )
        nonce = int(fields.pop("nonce"))
        if not fields["to"]:
            fields.pop("to")
        quotes = fee_quotes(self.w3)
        quote = await self._retrying(lambda: quotes.fields(0.0))  # fresh: the fee just rose
        tx = {k: v for k, v in fields.items() if k not in ("gasPrice", "maxFeePerGas")}
        tx.pop("maxPriorityFeePerGas", None)
        if "maxFeePerGas" in quote:
            old_cap = fields.get("maxFeePerGas", fields.get("gasPrice", 0))
            old_tip = fields.get("maxPriorityFeePerGas", fields.get("gasPrice", 0))
            tip = max(quote["maxPriorityFeePerGas"], _bumped(old_tip))
            tx["maxPriorityFeePerGas"] = tip
            tx["maxFeePerGas"] = max(quote["maxFeePerGas"], _bumped(old_cap), tip)
        else:
            old_price = fields.get("gasPrice", fields.get("maxFeePerGas", 0))
            tx["gasPrice"] = max(quote["gasPrice"], _bumped(old_price))
        state = await self._state()
        async with state.lock:
            if nonce < await self._latest_nonce():
                return None
            new_raw, new_hash = self._sign(tx, nonce)
            log.warning(
                "signing %s (nonce %d of %s) again at current fees: %s",
                "0x" + keccak(raw).hex(),
                nonce,
                self.address,
                new_hash,
            )
            if before_broadcast is not None:
                await before_broadcast(new_hash, new_raw, nonce)
            try:
                await self._broadcast(new_raw, new_hash)
            except Web3RPCError as exc:
                if is_nonce_conflict(exc) and nonce < await self._latest_nonce():
                    return None
                raise self._broadcast_error(exc) from exc
            waiting = state.inflight.get(nonce)
            if waiting is not None and waiting.raw == raw:
                waiting.raw, waiting.tx_hash = new_raw, new_hash
                waiting.hashes.append(new_hash)
        return new_hash, new_raw

    async def _latest_nonce(self) -> int:
        return int(
            await self._retrying(lambda: self.w3.eth.get_transaction_count(self.address, "latest"))
        )

    async def fill_gap_below(self, nonce: int) -> int:
        """Fill with no-op transfers the nonces below ``nonce`` that neither the chain nor the
        node's pool holds, so a transaction at ``nonce`` can be mined; how many were filled.

        A reorganisation can remove several of this account's transactions; a node may not
        put them back in its pool (anvil does not), and the writes they belonged to may never
        be retried. A transaction sent again at a later nonce would then wait behind the gap
        for ever. The filled nonces' own transactions, sent again later, find their nonce
        taken and are signed anew (the gateway resumes a write that way).
        """
        below = await self.pending_nonce()
        if below >= nonce:
            return 0
        state = await self._state()
        async with state.lock:
            await self._fill_gap(state, below, nonce)
        return nonce - below

    async def deploy(
        self, abi: Sequence[Mapping[str, Any]], bytecode: str, *args: Any, **tx: Any
    ) -> tuple[str, TxReceipt]:
        """Deploy a contract; return ``(address, receipt)``."""
        factory = self.w3.eth.contract(abi=list(abi), bytecode=bytecode)
        data = factory.constructor(*args).data_in_transaction
        pending = await self.send({**tx, "data": data})
        receipt = await self.wait(pending)
        address = receipt.get("contractAddress")
        if not address:
            raise TransactionError(f"deployment {pending.tx_hash} created no contract")
        return to_checksum_address(address), receipt

    async def wait(self, pending: PendingTx, timeout_s: float | None = None) -> TxReceipt:
        """Wait for ``pending``; raise :class:`ContractRevert` if its status is 0."""
        receipt = await pending.receipt(timeout_s)
        if receipt["status"] == 0:
            shape = pending.gas_shape
            near_limit = receipt["gasUsed"] >= OUT_OF_GAS_SHARE * pending.tx["gas"]
            if shape is not None and self.gas_estimates is not None and near_limit:
                # Out of gas on a cached estimate: nothing happened on chain but the nonce; the
                # shape is estimated afresh from now on, and the caller may send it again.
                self.gas_estimates.forget(shape)
                raise CachedGasExhausted(
                    f"transaction {pending.tx_hash} ran out of its cached gas estimate",
                    tx_hash=pending.tx_hash,
                )
            raise await revert_for_failed_transaction(self.w3, pending.tx_hash)
        return receipt

    def _encode_call(self, fn: Any) -> dict[str, Any]:
        address = getattr(fn, "address", None)
        if not address:
            raise TransactionError(f"{fn!r} is not bound to a contract address")
        data = encode_function_call(fn)
        if data is not None:
            return {"to": _checksum(address), "data": data}
        encode = getattr(fn, "_encode_transaction_data", None)
        if encode is None:
            raise TransactionError(f"cannot encode call data for {fn!r}")
        return {"to": _checksum(address), "data": encode()}

    def _broadcast_error(self, exc: Web3RPCError) -> TransactionError:
        revert = revert_from_exception(exc)
        if revert is not None:
            return revert
        return TransactionError(f"node refused the transaction: {rpc_error_message(exc)}")

    async def _broadcast(self, raw: bytes, tx_hash: str, maybe_sent: bool = False) -> None:
        """Send raw bytes, retrying connection errors with backoff.

        A nonce conflict on a hash the node knows counts as success only if these very bytes
        may have reached the node before (a retry after a lost response, a re-broadcast):
        identical bytes signed by someone else for the same nonce are a conflict, not ours.
        """
        delay = 0.05
        deadline = time.monotonic() + self.unavailable_timeout_s
        rpc = lean(self.w3)
        body = "0x" + raw.hex()
        while True:
            try:
                try:
                    await rpc.call("eth_sendRawTransaction", [body])
                except RpcError as exc:
                    raise as_web3_error(exc) from exc
                return
            except CONNECTION_ERRORS as exc:
                maybe_sent = True
                if time.monotonic() + delay > deadline:
                    raise ChainUnavailableError(
                        f"node unreachable for {self.unavailable_timeout_s:.0f}s: {exc}"
                    ) from exc
                log.info("broadcast: node unreachable (%s); retrying in %.2fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            except Web3RPCError as exc:
                if maybe_sent and is_nonce_conflict(exc) and await self._known(tx_hash):
                    return
                raise

    async def _known(self, tx_hash: str) -> bool:
        try:
            await self._retrying(lambda: self.w3.eth.get_transaction(tx_hash))  # type: ignore[arg-type]
        except TransactionNotFound:
            return False
        return True

    async def _resync(self) -> None:
        await self.nonce_store.reset(
            await self.chain_id(), self.address, await self.pending_nonce()
        )

    async def _retrying(self, make: Callable[[], Awaitable[T]]) -> T:
        """Run ``make()``, retrying connection errors with backoff."""
        delay = 0.05
        deadline = time.monotonic() + self.unavailable_timeout_s
        while True:
            try:
                return await make()
            except CONNECTION_ERRORS as exc:
                if time.monotonic() + delay > deadline:
                    raise ChainUnavailableError(
                        f"node unreachable for {self.unavailable_timeout_s:.0f}s: {exc}"
                    ) from exc
                log.info("node unreachable (%s); retrying in %.2fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _forget(self, pending: PendingTx) -> None:
        if self._chain_id is None:
            return
        state = account_state(self._chain_id, self.address, create=False)
        if state is not None and state.inflight.get(pending.nonce) is pending:
            del state.inflight[pending.nonce]

    # -- recovery --------------------------------------------------------------------------

    async def recover(self) -> None:
        """Check this account's unmined transactions and repair what the node lost."""
        state = await self._state()
        if state.recovering.locked():
            async with state.recovering:  # someone else is at it: wait for them
                return
        async with state.recovering, state.lock:
            await self._recover_locked(state)

    async def _recover_locked(self, state: AccountState) -> None:
        chain_id = await self.chain_id()
        latest = int(
            await self._retrying(lambda: self.w3.eth.get_transaction_count(self.address, "latest"))
        )
        known: list[PendingTx] = []
        lost: list[PendingTx] = []
        consumed: list[PendingTx] = []
        for p in sorted(state.inflight.values(), key=lambda p: p.nonce):
            if await p._poll_once() is not None:
                continue
            if await self._known(p.tx_hash):
                known.append(p)
            elif p.nonce < latest and p.abandoned:
                # Nobody waits for it, and its write may have been signed again under another
                # hash (a retry in another process, at current fees): signing it anew here
                # would run the call a second time, recorded nowhere. Forget it.
                log.warning(
                    "recovering %s: %s (nonce %d) gone, unawaited: forgotten",
                    self.address,
                    p.tx_hash,
                    p.nonce,
                )
                self._forget_nonce(state, p)
            elif p.nonce < latest:
                consumed.append(p)
            else:
                lost.append(p)
        if not (lost or consumed) and (not known or known[0].nonce <= latest):
            return
        log.warning(
            "recovering %s: chain at nonce %d, %d waiting in pool, %d lost, %d displaced",
            self.address,
            latest,
            len(known),
            len(lost),
            len(consumed),
        )
        to_resign = consumed
        if lost and not known and lost[0].nonce > latest:
            # The node lost all of ours and the chain is behind them (restart without pool,
            # state rolled back): move them down, in order, to the chain's pending nonce.
            await self.nonce_store.reset(chain_id, self.address, await self.pending_nonce())
            to_resign = lost + consumed
        else:
            for p in lost:
                try:
                    await self._broadcast(p.raw, p.tx_hash, maybe_sent=True)
                except Web3RPCError as exc:
                    if is_fee_refusal(exc):
                        # Below the base fee now: only its write may sign it again (it records
                        # the replacement first, :meth:`refee`); failing this pass would fail
                        # whichever write's wait ran it.
                        log.warning(
                            "recovering %s: %s (nonce %d) refused for its fees: %s",
                            self.address,
                            p.tx_hash,
                            p.nonce,
                            rpc_error_message(exc),
                        )
                        continue
                    if not is_nonce_conflict(exc):
                        raise self._broadcast_error(exc) from exc
                    to_resign.append(p)
        for p in sorted(to_resign, key=lambda p: p.nonce):
            self._forget_nonce(state, p)
            fresh = await self._sign_and_broadcast(state, p.tx, lock_held=True)
            p.nonce, p.raw, p.tx_hash = fresh.nonce, fresh.raw, fresh.tx_hash
            p.hashes.append(fresh.tx_hash)
            state.inflight[p.nonce] = p
        waiting = sorted(p.nonce for p in state.inflight.values())
        if waiting and waiting[0] > latest:
            await self._fill_gap(state, latest, waiting[0])

    @staticmethod
    def _forget_nonce(state: AccountState, p: PendingTx) -> None:
        if state.inflight.get(p.nonce) is p:
            del state.inflight[p.nonce]

    async def _fill_gap(self, state: AccountState, start: int, end: int) -> None:
        """Fill nonces [start, end) that no transaction of ours holds with no-op transfers."""
        filler: dict[str, Any] = {
            "to": self.address,
            "value": 0,
            "data": b"",
            "gas": 21000,
            "chainId": await self.chain_id(),
            **(await self.fee_fields()),
        }
        for nonce in range(start, end):
            if nonce in state.inflight:
                continue
            raw, tx_hash = self._sign(filler, nonce)
            log.warning(
                "filling nonce gap %d for %s with a no-op (%s)", nonce, self.address, tx_hash
            )
            with contextlib.suppress(Web3RPCError):
                await self._broadcast(raw, tx_hash)
