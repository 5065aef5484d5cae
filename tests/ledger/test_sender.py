"""TransactionSender against a real anvil: concurrency, pipelining, reverts, recovery."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from eth_account import Account
from eth_typing import HexStr

from ledger.anvil import rpc_call
from ledger.errors import ContractRevert
from ledger.node import Web3Client
from ledger.nonces import MemoryNonceStore
from ledger.pending import AccountState
from ledger.sender import TransactionSender
from tests.support.chain import Deployed

pytestmark = pytest.mark.usefixtures("chain_snapshot")


def thrower_contract(w3: Web3Client, thrower: Deployed) -> Any:
    return w3.eth.contract(address=w3.to_checksum_address(thrower.address), abi=thrower.abi)


async def test_200_concurrent_sends_get_distinct_consecutive_nonces(
    w3: Web3Client, dev_keys: list[str], thrower: Deployed
) -> None:
    account = Account.from_key(dev_keys[1])
    sender = TransactionSender(w3, account)
    contract = thrower_contract(w3, thrower)
    start = await w3.eth.get_transaction_count(account.address)

    async def one() -> Any:
        pending = await sender.send(
            {"to": thrower.address, "data": contract.functions.bump()._encode_transaction_data()}
        )
        return pending, await pending.receipt()

    results = await asyncio.gather(*(one() for _ in range(200)))
    nonces = sorted(p.nonce for p, _ in results)
    assert nonces == list(range(start, start + 200))
    assert all(r["status"] == 1 for _, r in results)
    assert len({r["transactionHash"] for _, r in results}) == 200
    assert await contract.functions.counter().call() == 200
    assert await w3.eth.get_transaction_count(account.address) == start + 200


async def test_send_many_pipelines_in_nonce_order(
    w3: Web3Client, dev_keys: list[str], thrower: Deployed
) -> None:
    sender = TransactionSender(w3, Account.from_key(dev_keys[2]))
    contract = thrower_contract(w3, thrower)
    data = contract.functions.bump()._encode_transaction_data()
    pendings = await sender.send_many([{"to": thrower.address, "data": data}] * 10)
    assert [p.nonce for p in pendings] == list(range(pendings[0].nonce, pendings[0].nonce + 10))
    receipts = [await p.receipt() for p in pendings]
    blocks = [r["blockNumber"] for r in receipts]
    assert blocks == sorted(blocks)
    assert await contract.functions.counter().call() == 10


async def test_transact_returns_successful_receipt(
    w3: Web3Client, dev_keys: list[str], thrower: Deployed
) -> None:
    sender = TransactionSender(w3, Account.from_key(dev_keys[3]))
    contract = thrower_contract(w3, thrower)
    receipt = await sender.transact(contract.functions.bump())
    assert receipt["status"] == 1
    (event,) = contract.events.Bumped().process_receipt(receipt)
    assert event["args"]["value"] == 1


async def test_estimation_revert_raises_decoded_error_and_broadcasts_nothing(
    w3: Web3Client, dev_keys: list[str], thrower: Deployed
) -> None:
    account = Account.from_key(dev_keys[4])
    sender = TransactionSender(w3, account)
    contract = thrower_contract(w3, thrower)
    before = await w3.eth.get_transaction_count(account.address, "pending")
    block_before = await w3.eth.block_number

    with pytest.raises(ContractRevert) as info:
        await sender.transact(contract.functions.take(5))

    assert info.value.name == "NotEnough"
    assert info.value.args == {"who": account.address, "wanted": 5, "available": 0}
    assert info.value.tx_hash is None
    assert await w3.eth.get_transaction_count(account.address, "pending") == before
    assert await w3.eth.block_number == block_before


async def test_mined_failed_transaction_is_decoded_by_replay(
    w3: Web3Client, dev_keys: list[str], thrower: Deployed
) -> None:
    account = Account.from_key(dev_keys[5])
    sender = TransactionSender(w3, account)
    contract = thrower_contract(w3, thrower)
    # An explicit gas limit skips estimation, so the reverting call is mined with status 0.
    with pytest.raises(ContractRevert) as info:
        await sender.transact(contract.functions.take(7), {"gas": 100_000})
    assert info.value.name == "NotEnough"
    assert info.value.args["wanted"] == 7
    assert info.value.tx_hash is not None
    receipt = await w3.eth.get_transaction_receipt(HexStr(info.value.tx_hash))
    assert receipt["status"] == 0


async def test_two_uncoordinated_senders_resync_on_nonce_conflicts(
    w3: Web3Client, dev_keys: list[str], thrower: Deployed
) -> None:
    """Separate stores (as if two hosts without a shared store): conflicts are repaired."""
    account = Account.from_key(dev_keys[6])
    a = TransactionSender(w3, account, MemoryNonceStore())
    b = TransactionSender(w3, account, MemoryNonceStore())
    # Different per-account locks too: pretend they live in different processes.
    b_state = AccountState()
    contract = thrower_contract(w3, thrower)
    data = contract.functions.bump()._encode_transaction_data()

    b_lock = asyncio.Lock()

    async def via_a() -> Any:
        pending = await a.send({"to": thrower.address, "data": data})
        return await pending.receipt()

    async def via_b() -> Any:
        prepared = await b.prepare({"to": thrower.address, "data": data})
        async with b_lock:
            pending = await b._sign_and_broadcast(b_state, prepared, lock_held=True)
        return await pending.receipt()

    receipts = await asyncio.gather(*(via_a() for _ in range(15)), *(via_b() for _ in range(15)))
    assert all(r["status"] == 1 for r in receipts)
    assert await contract.functions.counter().call() == 30


async def test_dropped_transaction_is_rebroadcast(
    w3: Web3Client, anvil_url: str, dev_keys: list[str], thrower: Deployed
) -> None:
    account = Account.from_key(dev_keys[7])
    sender = TransactionSender(w3, account, stuck_after_s=0.3)
    contract = thrower_contract(w3, thrower)
    rpc_call(anvil_url, "evm_setAutomine", [False])
    try:
        pending = await sender.send(
            {"to": thrower.address, "data": contract.functions.bump()._encode_transaction_data()}
        )
        rpc_call(anvil_url, "anvil_dropAllTransactions")
        rpc_call(anvil_url, "evm_setAutomine", [True])
        receipt = await pending.receipt(timeout_s=10)
    finally:
        rpc_call(anvil_url, "evm_setAutomine", [True])
    assert receipt["status"] == 1
    assert await contract.functions.counter().call() == 1
