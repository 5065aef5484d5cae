"""Claim pieces: the tokens a payable is split into and passed down the supply chain (SPEC §2)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from backend.schemas.common import (
    Address,
    Hash32,
    Input,
    Output,
    PositiveAmount,
    Timestamp,
    WriteResult,
)
from backend.schemas.invoices import PlainText
from backend.schemas.payables import ClaimStatus


class ClaimPublic(Output):
    id: int
    payable_id: int
    parent_id: int | None = Field(description="the piece it was split from; null for the root")
    depth: int = Field(description="0 for the root piece, +1 per split")
    holder: Address
    obligor: Address | None = Field(description="who owes it (its payable's obligor)")
    amount: int = Field(description="its value in minor units")
    locked_amount: int = Field(description="value locked by a pending financing application")
    available_amount: int = Field(description="amount − locked_amount: what may move now")
    status: ClaimStatus
    frozen: bool
    financed: bool
    due_date: Timestamp
    invoice_id: Hash32 | None = Field(description="the trade background of its creation")
    created_block: int


class ClaimsPublic(Output):
    items: list[ClaimPublic]
    next_cursor: str | None = None


class ClaimWrite(ClaimPublic, WriteResult):
    """A piece after a write (freeze, unfreeze)."""


class TransferCreate(Input):
    """The holder passes ``amount`` of the piece to ``to``: all of it moves the piece itself,
    less splits a new piece off it."""

    to: Address = Field(description="an active supplier or financier")
    amount: PositiveAmount = Field(description="minor units; the piece's whole amount or less")
    invoice_id: Hash32 | None = Field(
        default=None,
        description="a confirmed invoice from `to` to the holder: the trade background",
    )


class TransferWrite(WriteResult):
    kind: Literal["split", "transfer"] = Field(
        description="split: a new piece was made for `to`; transfer: the piece changed holder"
    )
    claim_id: int = Field(description="the piece `to` now holds")
    from_claim_id: int = Field(description="the piece the value came from")
    to: Address
    amount: int
    claim: ClaimPublic = Field(description="the piece `to` now holds")
    source: ClaimPublic = Field(description="the piece the value came from, after the write")


class FreezeRequest(Input):
    reason: PlainText = Field(
        min_length=1,
        max_length=500,
        description="e.g. the court order; the chain keeps its SHA-256",
    )


class ClaimEventPublic(Output):
    """One chain event of a piece's history."""

    block_number: int
    log_index: int
    block_time: Timestamp = Field(description="the block's time (chain time, UTC)")
    tx_hash: Hash32
    contract: str
    event: str = Field(examples=["ClaimSplit"])
    args: dict[str, Any] = Field(description="decoded arguments by their Solidity names")


class ClaimHistory(Output):
    claim_id: int
    holder: Address = Field(description="the piece's holder now")
    holder_custody: Literal["self", "hosted"] = Field(
        default="hosted",
        description="who holds the holder's key: `self` (the holder) or `hosted` (the platform)",
    )
    items: list[ClaimEventPublic]
    next_cursor: str | None = None
