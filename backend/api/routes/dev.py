"""The local development chain's clock: operator only, and absent (404) on any other chain."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import Field

from backend.api.deps import PortsDep, writer
from backend.auth import Caller
from backend.schemas.common import Input, Output
from backend.services import chain_clock
from ledger.roles import Role

router = APIRouter(prefix="/v1/dev", tags=["development"])

#: 9999-12-31T23:59:59Z: the last second an ISO 8601 date without extension can write.
LAST_TIME = 253_402_300_799
#: 3000-01-01T00:00:00Z: the latest time the clock may be moved to. Blocks mined after the move
#: go on adding seconds; moved to LAST_TIME itself, the next block's time could no longer be
#: written as a date in any answer (the clock's own answer was a 500).
LATEST_UNTIL = 32_503_680_000


class AdvanceTime(Input):
    until: int = Field(
        ge=0,
        le=LATEST_UNTIL,
        description="UNIX time (seconds) the chain's clock should reach, no later than "
        "3000-01-01; a time already reached changes nothing (a retry is harmless)",
    )


class ChainClockMoved(Output):
    chain_time: int = Field(ge=0, le=LAST_TIME, description="the new head block's timestamp")
    previous_chain_time: int = Field(ge=0, le=LAST_TIME)
    advanced_by: int = Field(ge=0, le=LAST_TIME, description="seconds")
    block_number: int | None = Field(
        ge=0, le=2**63 - 1, description="the block mined at the new time (null: none needed)"
    )


@router.post("/advance-time", response_model=ChainClockMoved)
async def advance_time(
    body: AdvanceTime,
    ports: PortsDep,
    caller: Annotated[Caller, writer(Role.OPERATOR)],
) -> Any:
    """Move the local chain's clock forward to `until` and mine a block (operator; local chain
    only, 404 elsewhere). No Idempotency-Key: reaching a time is idempotent by itself."""
    return await chain_clock.advance_time(ports, body.until)
