"""Payables: a core enterprise's confirmed debt to a supplier, its lineage tree of pieces and
their settlement at maturity (SPEC §2, §4)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from backend.schemas.common import (
    Address,
    Hash32,
    Id,
    Input,
    Output,
    PositiveAmount,
    Timestamp,
    WriteResult,
)
from backend.schemas.invoices import ChainTime, PlainText

PayableStatus = Literal["issued", "overdue", "settled", "cancelled"]
ClaimStatus = Literal["active", "locked", "financed", "settled", "frozen", "cancelled"]
#: ``ClaimLedger.MAX_SETTLEMENT_BATCH``: the longest list one settlement may carry (the test
#: suite checks it against the deployed contract).
MAX_SETTLEMENT_BATCH = 100
#: Levels of the tree one answer nests (deeper pieces: ask again from a piece at the cut).
MAX_TREE_LEVELS = 64


class PayableCreate(Input):
    """The caller (a core enterprise, the obligor) issues a payable to ``supplier``."""

    supplier: Address
    face_value: PositiveAmount
    due_date: ChainTime = Field(description="maturity; at most the term cap after issue")
    invoice_ids: list[Hash32] = Field(
        min_length=1,
        max_length=100,
        description="confirmed invoices from the supplier to the caller, totalling at least "
        "the face value (the contract takes at most 20)",
    )
    clearing_agent: Address | None = Field(
        default=None, description="the clearing agent that may record its settlement"
    )


class PayablePublic(Output):
    id: int
    obligor: Address
    supplier: Address
    face_value: int
    settled_value: int
    outstanding_value: int = Field(description="face value not yet settled")
    due_date: Timestamp
    issued_at: Timestamp
    invoice_ids: list[Hash32]
    clearing_agent: Address | None
    status: PayableStatus
    root_claim_id: int
    long_term: bool = Field(description="the term is longer than the long-term threshold")
    issued_block: int
    overdue_from: Timestamp | None = Field(
        default=None,
        description="reads only: when the payable may be marked overdue, as the chain's "
        "overdueFrom answers it now (due date + grace + the time a frozen piece or a platform "
        "pause stopped the clock since the due date; it moves later while one lasts); null "
        "once settled or cancelled, in write answers, and when the node cannot be asked",
    )


class PayablesPublic(Output):
    items: list[PayablePublic]
    next_cursor: str | None = None


class PayableWrite(PayablePublic, WriteResult):
    """A payable after a write (issue, overdue, cancel)."""


class PayableOverdueWrite(PayableWrite):
    unsettled_value: int = Field(description="what was still unpaid when it was marked")


class SettlementItem(Input):
    claim_id: Id
    payment_ref: PlainText = Field(
        min_length=1,
        max_length=200,
        description="the bank payment's reference; the chain keeps its SHA-256",
    )


class SettlementCreate(Input):
    """Pieces of this payable whose holders were paid, each with its payment's reference."""

    items: list[SettlementItem] = Field(min_length=1, max_length=MAX_SETTLEMENT_BATCH)

    @model_validator(mode="after")
    def _distinct(self) -> SettlementCreate:
        ids = [item.claim_id for item in self.items]
        if len(set(ids)) != len(ids):
            raise ValueError("a piece is listed twice")
        return self


class SettlementPublic(Output):
    claim_id: int
    holder: Address = Field(description="the holder that was paid")
    amount: int
    payment_ref_sha256: Hash32


class SettlementsWrite(WriteResult):
    payable: PayablePublic
    settlements: list[SettlementPublic]
    payable_settled: bool = Field(description="this write settled the payable's last piece")


class TreeNode(Output):
    """A piece in its payable's lineage tree."""

    id: int
    parent_id: int | None
    depth: int
    holder: Address
    holder_custody: Literal["self", "hosted"] = Field(
        default="hosted",
        description="who holds the holder's key: `self` (the holder) or `hosted` (the platform)",
    )
    amount: int
    locked_amount: int
    status: ClaimStatus
    invoice_id: Hash32 | None = Field(description="the trade background of its creation")
    child_count: int
    truncated: bool = Field(
        description="its children are left out (the answer's level limit): ask for the tree "
        "from this piece"
    )
    children: list[TreeNode]


class PayableTree(Output):
    payable_id: int
    from_claim_id: int = Field(description="the piece the tree starts at (the root by default)")
    node_count: int = Field(description="pieces in this answer")
    root: TreeNode


TreeFormat = Literal["nested", "compact"]
#: Pieces one page of the compact tree holds at most (whole levels; a level larger than this
#: is one page by itself).
MAX_COMPACT_PAGE = 20_000


class TreeColumns(Output):
    """The pieces of a compact tree page, one list per field, the ``i``-th entries of every
    list being the ``i``-th piece (level by level, each level in id order)."""

    id: list[int]
    parent_id: list[int | None]
    depth: list[int]
    holder: list[Address]
    holder_custody: list[Literal["self", "hosted"]]
    amount: list[int]
    locked_amount: list[int]
    status: list[ClaimStatus]
    invoice_id: list[Hash32 | None]
    child_count: list[int]


class PayableTreeCompact(Output):
    """``format=compact``: the tree as columns, paged by whole levels below ``from_claim_id``.

    Pieces come level by level (a parent always before its children), so a client rebuilds
    the tree from ``parent_id``. A piece of the page's last level with ``child_count`` > 0 has
    its children on the next page (``next_cursor``), or beyond ``levels`` when there is none."""

    payable_id: int
    from_claim_id: int = Field(description="the piece the tree starts at (the root by default)")
    format: Literal["compact"] = "compact"
    first_level: int = Field(description="levels below from_claim_id of this page's first")
    last_level: int = Field(description="levels below from_claim_id of this page's last")
    node_count: int = Field(description="pieces in this page")
    columns: TreeColumns
    next_cursor: str | None = Field(description="the next page's levels: pass as cursor")
