"""A chain without baseFeePerGas and a zero gas price (like Besu QBFT with London off)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from eth_account import Account
from eth_typing import HexStr

from ledger.anvil import AnvilProcess
from ledger.node import Web3Client, close_web3, make_web3
from ledger.sender import TransactionSender


@pytest.fixture(scope="module")
def zero_gas_node() -> Iterator[AnvilProcess]:
    # berlin predates London: blocks carry no baseFeePerGas, like QBFT with London off.
    with AnvilProcess.ephemeral(hardfork="berlin", gas_price=0, base_fee=0) as node:
        yield node


@pytest.fixture
async def zw3(zero_gas_node: AnvilProcess) -> AsyncIterator[Web3Client]:
    client = make_web3(zero_gas_node.url)
    yield client
    await close_web3(client)


async def test_legacy_zero_price_transactions_are_mined(
    zw3: Web3Client, dev_keys: list[str]
) -> None:
    block = await zw3.eth.get_block("latest")
    assert "baseFeePerGas" not in block
    account = Account.from_key(dev_keys[8])
    other = Account.from_key(dev_keys[9]).address
    sender = TransactionSender(zw3, account)
    assert await sender.fee_fields() == {"gasPrice": 0}

    balance_before = await zw3.eth.get_balance(account.address)
    pendings = await sender.send_many([{"to": other, "value": 1} for _ in range(5)])
    receipts = [await p.receipt() for p in pendings]

    assert all(r["status"] == 1 for r in receipts)
    for pending in pendings:
        tx = await zw3.eth.get_transaction(HexStr(pending.tx_hash))
        assert tx["type"] == 0
        assert tx["gasPrice"] == 0
    # Gas is free: only the transferred value left the account.
    assert await zw3.eth.get_balance(account.address) == balance_before - 5
