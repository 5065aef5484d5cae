"""The chain's clock as the API shows it, and, on the local development chain only, moving it
forward (``tierflow demo`` moves past a due date through the API, never the node's JSON-RPC).

Moving the clock is idempotent by itself: the request names the time to reach (``until``), so
a retry after a lost answer changes nothing more; a time already reached is left alone (the
clock never goes back: AP-3's order of records is the chain's).
"""

from __future__ import annotations

from typing import Any

from backend.errors import NotFound
from backend.ports import Ports, WriteContext


async def clock(ports: Ports) -> dict[str, Any]:
    """The chain's time (the latest block's timestamp) and whether it is the local chain."""
    return {
        "chain_time": await ports.ledger.chain_time(),
        "local_chain": await ports.ledger.local_chain(),
    }


async def write_time(ports: Ports, write: WriteContext) -> int:
    """The chain's time as ``write`` reads it: its first run's, kept with the write (durable
    with its transaction's record, before that leaves). A run that resumes the write (its
    worker died after the broadcast, a ``self`` member's signature came) computes the same
    call from it (an application's default expiry, an approval's pricing), which the journal
    then finds sent, instead of another call beside the first."""
    kept = write.remembered("chain_time")
    if kept is not None:
        return int(kept)
    now = await ports.ledger.chain_time()
    write.keep(chain_time=now)
    return now


async def advance_time(ports: Ports, until: int) -> dict[str, Any]:
    """Move the local chain's clock to ``until`` (no earlier than it is) and mine a block."""
    if not await ports.ledger.local_chain():
        raise NotFound("the clock moves only on the local development chain", code="not_found")
    before = await ports.ledger.chain_time()
    block = None
    if until > before:
        block = await ports.ledger.set_chain_time(until)
    after = await ports.ledger.chain_time()
    return {
        "chain_time": after,
        "previous_chain_time": before,
        "advanced_by": after - before,
        "block_number": block,
    }
