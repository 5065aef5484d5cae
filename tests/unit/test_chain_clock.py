"""The chain clock service without a chain: the clock moves only forward, and only on the local
development chain (elsewhere the route does not exist: 404)."""

from __future__ import annotations

import pytest

from backend.errors import NotFound
from backend.ports import Ports
from backend.services import chain_clock
from tests.support.fakes import FakeLedger


def ports_of(ledger: FakeLedger) -> Ports:
    return Ports(None, ledger)  # type: ignore[arg-type]  # the clock needs no database


async def test_the_clock_moves_forward_only() -> None:
    ledger = FakeLedger(now=1_000)
    head = await ledger.mirrored_block()
    moved = await chain_clock.advance_time(ports_of(ledger), 5_000)
    assert moved == {
        "chain_time": 5_000,
        "previous_chain_time": 1_000,
        "advanced_by": 4_000,
        "block_number": (head or 0) + 1,
    }
    again = await chain_clock.advance_time(ports_of(ledger), 4_000)
    assert again["chain_time"] == 5_000
    assert again["advanced_by"] == 0
    assert again["block_number"] is None


async def test_not_on_another_chain() -> None:
    ledger = FakeLedger(now=1_000, local=False)
    with pytest.raises(NotFound):
        await chain_clock.advance_time(ports_of(ledger), 5_000)
    assert ledger.now == 1_000
    assert await chain_clock.clock(ports_of(ledger)) == {"chain_time": 1_000, "local_chain": False}
