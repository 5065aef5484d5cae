"""Helpers of the client's tests (tests/client) that drive a whole platform."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bench.stack import Stack
from ledger.anvil import rpc_call

DAY = 86_400
KYC_UNTIL = datetime.now(UTC) + timedelta(days=3650)
RATE_BPS = 600


def chain_time(stack: Stack) -> int:
    """The latest block's timestamp on the stack's node."""
    block = rpc_call(stack.rpc_url, "eth_getBlockByNumber", ["latest", False])
    return int(block["timestamp"], 16)
