"""Intents: what a ``self`` member is asked to sign (SPEC §4, docs/consent.md)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from backend.schemas.common import Address, Input, Output, Timestamp

IntentStatus = Literal["open", "signed", "done", "failed", "expired"]


class IntentAction(Output):
    contract: str = Field(examples=["ClaimLedger"])
    function: str = Field(examples=["split"])
    args: dict[str, Any] = Field(description="the call's arguments by their Solidity names")


class IntentPublic(Output):
    id: str
    member: Address = Field(description="the signer the API expects")
    status: IntentStatus
    expires_at: Timestamp = Field(description="the request's on-chain deadline (chain time)")
    typed_data: dict[str, Any] = Field(description="EIP-712 ForwardRequest: what is signed")
    digest: str = Field(description="the EIP-712 digest of `typed_data`")
    action: IntentAction
    tx_hash: str | None = Field(description="the relayed transaction, once sent")


class IntentsPublic(Output):
    items: list[IntentPublic]
    next_cursor: str | None = None


class SignatureSubmit(Input):
    signature: str = Field(
        pattern=r"^0x[0-9a-fA-F]{130}$",
        examples=["0x" + "11" * 65],
        description="65 bytes r ‖ s ‖ v over the intent's `digest`, by the member's key "
        "(intents are EIP-712 typed data: no `signed_tx`)",
    )
