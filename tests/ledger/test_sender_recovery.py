"""The sender survives a node restart and a chain that forgot its transactions."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from eth_account import Account

from ledger.anvil import AnvilProcess, rpc_call
from ledger.errors import TransactionError, TransactionTimeoutError
from ledger.node import Web3Client, close_web3, make_web3
from ledger.nonces import FileNonceStore
from ledger.sender import FeeTooLow, TransactionSender
from ledger.signing import signed_call, signed_fields


async def test_sender_continues_across_node_restart(tmp_path: Path, dev_keys: list[str]) -> None:
    node = AnvilProcess.ephemeral(state_path=tmp_path / "chain" / "anvil-state.json")
    node.start()
    w3 = make_web3(node.url)
    try:
        account = Account.from_key(dev_keys[11])
        other = Account.from_key(dev_keys[12]).address
        sender = TransactionSender(w3, account, FileNonceStore(tmp_path / "nonces"))
        first = await sender.send_many([{"to": other, "value": 1}] * 3)
        for p in first:
            await p.receipt()

        node.stop()  # SIGTERM: anvil writes its state file
        assert node.state_path is not None
        assert node.state_path.exists()

        async def more() -> list[int]:
            # Issued while the node is down: retried with backoff until it is back.
            pendings = await sender.send_many([{"to": other, "value": 1}] * 3)
            return [(await p.receipt())["status"] for p in pendings]

        task = asyncio.create_task(more())
        await asyncio.sleep(0.5)
        assert not task.done()
        await asyncio.to_thread(node.start)  # same port, same state file
        statuses = await asyncio.wait_for(task, 30)

        assert statuses == [1, 1, 1]
        assert await w3.eth.get_transaction_count(account.address) == 6
        balance = await w3.eth.get_balance(other)
        assert balance % 10**6 == 6  # dev balances are round numbers of ether
    finally:
        await close_web3(w3)
        node.stop()


@pytest.mark.usefixtures("chain_snapshot")
async def test_nonce_gap_after_the_chain_forgot_is_filled(
    w3: Web3Client, anvil_url: str, dev_keys: list[str]
) -> None:
    account = Account.from_key(dev_keys[13])
    other = Account.from_key(dev_keys[14]).address
    sender = TransactionSender(w3, account, stuck_after_s=0.3)
    inner = rpc_call(anvil_url, "evm_snapshot")
    for p in await sender.send_many([{"to": other, "value": 1}] * 3):
        await p.receipt()
    # The chain loses those three (as a node restarted from an older state would); the
    # store still says the next nonce is 3, so the next transaction waits behind a gap.
    assert rpc_call(anvil_url, "evm_revert", [inner]) is True
    pending = await sender.send({"to": other, "value": 1})
    assert pending.nonce == 3
    receipt = await pending.receipt(timeout_s=15)
    assert receipt["status"] == 1
    assert await w3.eth.get_transaction_count(account.address) == 4


@pytest.mark.usefixtures("chain_snapshot")
async def test_a_dropped_transaction_below_the_base_fee_is_signed_again_at_its_nonce(
    w3: Web3Client, anvil_url: str, dev_keys: list[str]
) -> None:
    """The node drops a transaction and the base fee rises above its cap: its bytes are refused
    (:class:`FeeTooLow`); :meth:`refee` signs the same call at the same nonce at current fees,
    records it first, and it is mined. Bytes another key signed are never signed again."""
    account = Account.from_key(dev_keys[15])
    other = Account.from_key(dev_keys[16]).address
    sender = TransactionSender(w3, account)
    rpc_call(anvil_url, "evm_setAutomine", [False])
    try:
        pending = await sender.send({"to": other, "value": 7, "data": b"\x01"})
        rpc_call(anvil_url, "anvil_dropAllTransactions")
        rpc_call(anvil_url, "anvil_setNextBlockBaseFeePerGas", ["0xe8d4a51000"])
    finally:
        rpc_call(anvil_url, "evm_setAutomine", [True])
    rpc_call(anvil_url, "evm_mine")
    with pytest.raises(FeeTooLow):
        await sender.rebroadcast(pending.raw, pending.tx_hash)
    stranger = TransactionSender(w3, Account.from_key(dev_keys[17]))
    with pytest.raises(TransactionError, match="only the platform's own"):
        await stranger.refee(pending.raw)
    recorded: list[tuple[str, int]] = []

    async def record(tx_hash: str, raw: bytes, nonce: int) -> None:
        recorded.append((tx_hash, nonce))

    again = await sender.refee(pending.raw, record)
    assert again is not None
    new_hash, new_raw = again
    assert recorded == [(new_hash, pending.nonce)]
    assert signed_call(new_raw) == signed_call(pending.raw)
    receipt = await w3.eth.wait_for_transaction_receipt(new_hash, timeout=15)  # type: ignore[arg-type]
    assert receipt["status"] == 1
    assert pending.hashes[-1] == new_hash  # the waiting transaction watches the new hash
    assert await sender.refee(pending.raw) is None  # its nonce is consumed now
    rpc_call(anvil_url, "anvil_setNextBlockBaseFeePerGas", ["0x3b9aca00"])
    rpc_call(anvil_url, "evm_mine")


@pytest.mark.usefixtures("chain_snapshot")
async def test_an_abandoned_transaction_replaced_elsewhere_is_not_signed_anew(
    w3: Web3Client, anvil_url: str, dev_keys: list[str]
) -> None:
    """A transaction whose wait timed out, then replaced at its nonce by another process (its
    write retried there, signed again at current fees) and mined: recovery here forgets it
    instead of signing the call again at a fresh nonce (which would run it twice)."""
    account = Account.from_key(dev_keys[18])
    other = Account.from_key(dev_keys[19]).address
    sender = TransactionSender(w3, account)
    rpc_call(anvil_url, "evm_setAutomine", [False])
    try:
        pending = await sender.send({"to": other, "value": 3})
        nonce = pending.nonce
        with pytest.raises(TransactionTimeoutError):
            await pending.receipt(timeout_s=0.2)
        assert pending.abandoned
        fields = signed_fields(pending.raw)
        assert fields is not None
        fields["maxFeePerGas"] *= 2
        fields["maxPriorityFeePerGas"] = fields["maxPriorityFeePerGas"] * 2 + 1
        fields["to"] = other
        replacement = account.sign_transaction(fields)
        rpc_call(anvil_url, "eth_sendRawTransaction", [replacement.raw_transaction.to_0x_hex()])
    finally:
        rpc_call(anvil_url, "evm_setAutomine", [True])
    rpc_call(anvil_url, "evm_mine")
    assert await w3.eth.get_transaction_count(account.address) == nonce + 1
    await sender.recover()
    rpc_call(anvil_url, "evm_mine")
    assert await w3.eth.get_transaction_count(account.address) == nonce + 1
    assert pending.hashes == [pending.tx_hash]  # not signed anew
