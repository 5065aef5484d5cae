"""Approvals: a maker's write waiting for a checker under dual control (SPEC §1)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from backend.schemas.common import Address, Input, Output, Timestamp

ApprovalStatus = Literal["pending", "approved", "declined"]


class ApprovalPublic(Output):
    id: str
    member: Address
    status: ApprovalStatus
    operation: str = Field(description="the write, e.g. `claims.transfer`")
    arguments: dict[str, Any] = Field(description="the write's arguments as the maker sent them")
    method: str
    path: str
    maker_user_id: str | None
    maker_key_id: str
    checker_user_id: str | None
    checker_key_id: str | None
    reason: str | None
    created_at: Timestamp
    decided_at: Timestamp | None


class ApprovalsPublic(Output):
    items: list[ApprovalPublic]
    next_cursor: str | None = None


class ApprovalDecision(Input):
    decision: Literal["approve", "decline"]
    reason: str | None = Field(default=None, min_length=1, max_length=500)


class DeclineRequest(Input):
    reason: str | None = Field(default=None, min_length=1, max_length=500)
