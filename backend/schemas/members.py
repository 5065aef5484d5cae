"""Members: organisations with one chain account each (the address is the id)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from backend.schemas.common import Address, Input, Output, Timestamp, WriteResult

RoleName = Literal[
    "operator", "core_enterprise", "supplier", "financier", "clearing_agent", "auditor"
]
BusinessRole = Literal["core_enterprise", "supplier", "financier", "clearing_agent", "auditor"]


class MemberCreate(Input):
    name: str = Field(min_length=1, max_length=200)
    roles: list[BusinessRole] = Field(min_length=1, max_length=5)
    kyc_expires_at: Timestamp


class MemberPublic(Output):
    address: Address
    name: str | None
    roles: list[RoleName]
    status: Literal["active", "suspended"]
    kyc_expires_at: Timestamp | None


class MembersPublic(Output):
    items: list[MemberPublic]
    next_cursor: str | None = None


class MemberCreated(MemberPublic, WriteResult):
    api_key: str = Field(description="the member's first API key: shown this once only")
    api_key_id: str


class MemberWrite(MemberPublic, WriteResult):
    """A member after a write (suspension, reinstatement, program limit)."""


class SuspendRequest(Input):
    reason: str = Field(min_length=1, max_length=500, description="kept as its SHA-256 on chain")


class ProgramLimitRequest(Input):
    program_limit: int = Field(ge=0, le=2**128 - 1, description="minor units (fen)")


class ProgramLimitPublic(WriteResult):
    obligor: Address
    program_limit: int
    outstanding: int


class KycRenewal(Input):
    kyc_expires_at: Timestamp


class ApiKeyCreate(Input):
    label: str = Field(default="rotated", min_length=1, max_length=100)


class ApiKeyPublic(Output):
    id: str
    label: str
    created_at: Timestamp
    revoked_at: Timestamp | None


class ApiKeyCreated(ApiKeyPublic):
    api_key: str = Field(description="shown this once only")


class ApiKeysPublic(Output):
    items: list[ApiKeyPublic]
