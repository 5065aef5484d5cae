"""Fee fields (:mod:`ledger.fees`): what the chain asks, one quote for every sender of a node
connection, asked again once older than a sender allows."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from eth_account import Account

from ledger.jsonrpc import RpcClient
from ledger.node import Web3Client
from ledger.sender import TransactionSender


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The methods asked of the node through the lean client."""
    methods: list[str] = []
    call = RpcClient.call

    async def counted(self: RpcClient, method: str, params: list[Any]) -> Any:
        methods.append(method)
        return await call(self, method, params)

    monkeypatch.setattr(RpcClient, "call", counted)
    return methods


async def test_the_fields_are_the_chains(w3: Web3Client, dev_keys: list[str]) -> None:
    sender = TransactionSender(w3, Account.from_key(dev_keys[3]))
    fields = await sender.fee_fields()
    block = await w3.eth.get_block("latest")
    tip = await w3.eth.max_priority_fee
    assert fields == {
        "maxFeePerGas": 2 * block["baseFeePerGas"] + tip,
        "maxPriorityFeePerGas": tip,
    }


async def test_senders_of_one_connection_share_one_quote(
    w3: Web3Client, dev_keys: list[str], asked: list[str]
) -> None:
    senders = [TransactionSender(w3, Account.from_key(k)) for k in dev_keys[:8]]
    answers = await asyncio.gather(*(s.fee_fields() for s in senders for _ in range(4)))
    assert all(a == answers[0] for a in answers)
    assert asked.count("eth_getBlockByNumber") == 1  # 32 asks, one refresh

    # A sender that allows no age gets a fresh quote; the others keep theirs.
    eager = TransactionSender(w3, Account.from_key(dev_keys[9]), fee_cache_s=0.0)
    await eager.fee_fields()
    assert asked.count("eth_getBlockByNumber") == 2
    await senders[0].fee_fields()
    assert asked.count("eth_getBlockByNumber") == 2
