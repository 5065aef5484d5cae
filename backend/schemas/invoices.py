"""Invoices: the trade background of payables and transfers (SPEC §2, §4).

The chain holds an invoice's fingerprint (its ``id``), parties, amount, issue date and the
SHA-256 of its document; the seller's tax id, the invoice code and number stay off chain
(``invoice_details``) and are shown to the invoice's parties only. How the fingerprint is
made from them: :func:`backend.services.invoices.fingerprint`.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from backend.schemas.common import (
    Address,
    Hash32,
    Input,
    Output,
    PositiveAmount,
    Sha256Hex,
    Timestamp,
    WriteResult,
)

#: What ``?format=`` of a list accepts: the JSON page (default) or the same items as CSV.
ListFormat = Literal["json", "csv"]
InvoiceStatus = Literal["registered", "confirmed", "used", "voided"]
#: Latest time a uint64 of seconds holds is far beyond datetime's year 9999: only the epoch
#: bounds a chain time from below.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _chain_time(value: datetime) -> datetime:
    # A time without an offset is read as UTC (the chain's clock has no zone), never as the
    # server's local time.
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if value < _EPOCH:
        raise ValueError("must not be before 1970-01-01T00:00:00Z")
    return value.astimezone(UTC)


#: A time given to the chain (UNIX seconds, uint64): ISO 8601, UTC when no offset is given.
ChainTime = Annotated[Timestamp, AfterValidator(_chain_time)]


def _plain_text(value: str) -> str:
    # Control characters have no place in a reference or an identifier, and PostgreSQL
    # refuses NUL in text: refuse them as input, not later as a 500. (Lone surrogates, which
    # UTF-8 cannot encode for hashing, pydantic refuses itself.)
    for c in value:
        if unicodedata.category(c) == "Cc" and c != "\t":
            raise ValueError("must be text without control characters")
    return value


#: Free text from a client that is hashed for the chain or stored (references, reasons, ids).
PlainText = Annotated[str, AfterValidator(_plain_text)]


def seconds(value: datetime) -> int:
    """A validated :data:`ChainTime` as the chain's UNIX seconds (sub-seconds dropped)."""
    return int(value.timestamp())


class InvoiceCreate(Input):
    """A supplier (the seller) registers an invoice it issued to ``buyer``."""

    buyer: Address
    seller_tax_id: PlainText = Field(
        min_length=1,
        max_length=64,
        description="the seller's tax id (统一社会信用代码); normalised for the fingerprint",
        examples=["91310000-MA1FL0XX1X"],
    )
    invoice_code: PlainText = Field(
        default="",
        max_length=64,
        description="the invoice code (发票代码); empty for fully digital invoices (数电票), "
        "which have a number only",
        examples=["031001900111"],
    )
    number: PlainText = Field(
        min_length=1, max_length=64, description="the invoice number", examples=["12345678"]
    )
    amount: PositiveAmount
    issue_date: ChainTime = Field(description="when it was issued; not after the chain's now")
    document_sha256: Sha256Hex = Field(description="SHA-256 of the invoice document")


class InvoicePublic(Output):
    id: Hash32 = Field(description="the fingerprint (see POST /v1/invoices)")
    seller: Address
    buyer: Address
    seller_tax_id: str | None = Field(description="as registered (null if not through this API)")
    invoice_code: str | None
    number: str | None
    amount: int
    issue_date: Timestamp
    document_sha256: Sha256Hex
    status: InvoiceStatus
    payable_id: int | None = Field(description="the payable it backs, once used by one")
    claim_id: int | None = Field(description="the piece whose transfer it backs, if any")
    registered_block: int


class InvoicesPublic(Output):
    items: list[InvoicePublic]
    next_cursor: str | None = None


class InvoiceWrite(InvoicePublic, WriteResult):
    """An invoice after a write (registration, confirmation, voiding)."""
