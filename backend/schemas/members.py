"""Members: organisations with one chain account each (the address is the id)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from backend.schemas.common import Address, Input, Output, Timestamp, WriteResult

RoleName = Literal[
    "operator", "core_enterprise", "supplier", "financier", "clearing_agent", "auditor"
]
BusinessRole = Literal["core_enterprise", "supplier", "financier", "clearing_agent", "auditor"]


Custody = Literal["self", "hosted"]
OrgRole = Literal["admin", "maker", "checker"]


class MemberCreate(Input):
    name: str = Field(min_length=1, max_length=200)
    roles: list[BusinessRole] = Field(min_length=1, max_length=5)
    kyc_expires_at: Timestamp
    address: Address | None = Field(
        default=None,
        description="the member's own account: `self` custody, the platform makes and keeps "
        "no key for it (it signs its own actions); without it the platform makes and keeps "
        "the key (`hosted`)",
    )


class MemberPublic(Output):
    address: Address
    name: str | None
    roles: list[RoleName]
    status: Literal["active", "suspended"]
    kyc_expires_at: Timestamp | None
    custody: Custody = Field(description="`self`: the member holds its key; `hosted`: the platform")
    dual_control: bool = Field(
        default=False, description="a maker's write waits for a checker of the member"
    )


class MembersPublic(Output):
    items: list[MemberPublic]
    next_cursor: str | None = None


class MemberCreated(MemberPublic, WriteResult):
    api_key: str | None = Field(
        description="the member's first API key: shown this once only (null when the answer "
        "is replayed for the same Idempotency-Key)"
    )
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
    over_limit: bool = Field(
        description="outstanding above the program limit (allowed when the limit is lowered): "
        "the obligor issues no new payable until it is back under"
    )


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
    api_key: str | None = Field(
        description="shown this once only (null when the answer is replayed for the same "
        "Idempotency-Key)"
    )


class ApiKeysPublic(Output):
    items: list[ApiKeyPublic]


class OrgUserCreate(Input):
    name: str = Field(min_length=1, max_length=200)
    role: OrgRole


class OrgUserPublic(Output):
    """A person of a member organisation (SPEC §1) with a role of its own."""

    id: str
    member: Address
    name: str
    role: OrgRole
    created_at: Timestamp


class OrgUserCreated(OrgUserPublic):
    api_key: str | None = Field(
        description="the user's first API key: shown this once only (null when the answer "
        "is replayed for the same Idempotency-Key)"
    )
    api_key_id: str


class OrgUsersPublic(Output):
    items: list[OrgUserPublic]
    next_cursor: str | None = None


class DualControlRequest(Input):
    enabled: bool


class DualControlPublic(Output):
    address: Address
    dual_control: bool
