"""The receipt watcher finds transactions mined after the chain went back (``evm_revert``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from web3._utils.method_formatters import receipt_formatter
from web3.datastructures import AttributeDict
from web3.types import Wei

from ledger.anvil import AnvilProcess
from ledger.node import Web3Client, close_web3, format_receipt, make_web3, rpc
from ledger.receipts import Found, block_receipts


@pytest.fixture
async def own_w3() -> AsyncIterator[Web3Client]:
    """A node of its own: the test turns automining off and reverts the chain."""
    node = AnvilProcess.ephemeral()
    await asyncio.to_thread(node.start)
    w3 = make_web3(node.url)
    try:
        yield w3
    finally:
        await close_web3(w3)
        node.stop()


async def test_watcher_resumes_below_its_cursor_after_a_revert(own_w3: Web3Client) -> None:
    w3 = own_w3
    accounts = list(await w3.eth.accounts)
    sender, recipient = accounts[0], accounts[1]
    genesis = await rpc(w3, "evm_snapshot")
    await rpc(w3, "evm_setAutomine", False)
    watcher = block_receipts(w3)

    async def mined_after(blocks: int) -> Found:
        """Send, let the watcher follow the head, then mine ``blocks`` blocks."""
        tx_hash = await w3.eth.send_transaction({"from": sender, "to": recipient, "value": Wei(1)})
        future = watcher.watch(["0x" + bytes(tx_hash).hex()])
        watcher.follow()
        await asyncio.sleep(0.2)  # the watcher has read the head it scans from
        for _ in range(blocks):
            await rpc(w3, "evm_mine")
        try:
            return await asyncio.wait_for(asyncio.shield(future), 5)
        finally:
            watcher.unwatch(future)

    _, first = await mined_after(5)
    assert first["blockNumber"] == 1
    await rpc(w3, "evm_revert", genesis)  # the head goes back from 5 to 0
    # Mined in block 1, below where the watcher had got to: found at once, not after the
    # chain grows past block 5 again (a model-test example waited up to 15 s for each).
    _, second = await mined_after(1)
    assert second["blockNumber"] == 1
    assert second["status"] == 1


RAW_RECEIPT: dict[str, Any] = {
    "transactionHash": "0x" + "ab" * 32,
    "transactionIndex": "0x1",
    "blockHash": "0x" + "cd" * 32,
    "blockNumber": "0x2a",
    "from": "0x" + "1f" * 20,
    "to": "0x" + "2e" * 20,
    "cumulativeGasUsed": "0x1d4c0",
    "gasUsed": "0xea60",
    "contractAddress": None,
    "logs": [
        {
            "address": "0x" + "3d" * 20,
            "topics": ["0x" + "01" * 32, "0x" + "00" * 12 + "4c" * 20],
            "data": "0x" + "00" * 31 + "07",
            "blockHash": "0x" + "cd" * 32,
            "blockNumber": "0x2a",
            "blockTimestamp": "0x6553f100",
            "transactionHash": "0x" + "ab" * 32,
            "transactionIndex": "0x1",
            "logIndex": "0x0",
            "removed": False,
        }
    ],
    "status": "0x1",
    "logsBloom": "0x" + "00" * 256,
    "type": "0x2",
    "effectiveGasPrice": "0x3b9aca00",
}


@pytest.mark.parametrize(
    "raw",
    [
        RAW_RECEIPT,
        {**RAW_RECEIPT, "to": None, "contractAddress": "0x" + "5b" * 20, "logs": []},
        {**RAW_RECEIPT, "status": "0x0", "blobGasUsed": "0x20000", "blobGasPrice": "0x1"},
    ],
)
def test_format_receipt_is_web3s_receipt_formatter(raw: dict[str, Any]) -> None:
    """The lean path's receipts have exactly the shape web3.py's formatter gives them."""
    expected = receipt_formatter(dict(raw))
    formatted = format_receipt(raw)
    assert formatted == expected
    # ... and the container web3.py's request manager gives it (event decoding needs it).
    assert isinstance(formatted, AttributeDict)
    assert all(isinstance(log, AttributeDict) for log in formatted["logs"])
    assert {k: type(v) for k, v in formatted.items()} == {k: type(v) for k, v in expected.items()}
    for mine, theirs in zip(formatted["logs"], expected["logs"], strict=True):
        assert {k: type(v) for k, v in mine.items()} == {k: type(v) for k, v in theirs.items()}
