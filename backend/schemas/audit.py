"""Audit: the chain's event feed, exposure per obligor, the mirror's reconciliation (IX-5) and
the API's own hash-chained log of mutating requests (AP-3)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from backend.schemas.common import Address, Hash32, Output, Sha256Hex, Timestamp

#: What ``?format=`` of a list accepts: the JSON page (default) or the same rows as CSV.
ListFormat = Literal["json", "csv"]


class EventPublic(Output):
    """One log of the deployment's contracts, decoded, with where it sits on the chain."""

    block_number: int = Field(ge=0)
    block_hash: Hash32
    block_time: Timestamp = Field(description="the block's time (chain time, UTC)")
    tx_hash: Hash32
    log_index: int = Field(ge=0, description="the log's index in its block")
    contract: str = Field(examples=["ClaimLedger"])
    event: str = Field(examples=["ClaimSplit"])
    args: dict[str, Any] = Field(
        description="the event's arguments by their Solidity names; integers exact (also "
        "above 2^53), addresses checksummed, bytes 0x-hex"
    )


class EventsPublic(Output):
    items: list[EventPublic]
    next_cursor: str | None = None


class ExposurePublic(Output):
    """An obligor's exposure. Without ``financier`` it is the obligor's whole book and
    ``financed`` counts every financier; with it, that financier's own exposure, and the
    obligor-wide figures (``program_limit``, ``issued``, ``outstanding``, ``overdue``) are
    null: a financier sees only what it financed."""

    obligor: Address
    obligor_name: str | None
    financier: Address | None = Field(description="null: the obligor's aggregate row")
    program_limit: int | None = Field(description="the obligor's program limit (minor units)")
    issued: int | None = Field(description="face value of payables issued and not cancelled")
    outstanding: int | None = Field(description="face value not yet settled")
    overdue: int | None = Field(description="face value not yet settled of Overdue payables")
    financed: int = Field(description="financed value outstanding (held by financiers)")
    exposure_limit: int | None = Field(description="the financier's limit on this obligor")
    over_limit: bool = Field(
        description="outstanding above the limit (a limit may be lowered below it): for the "
        "obligor's row its program limit, no new payable until it is back under; for a "
        "financier's row its exposure limit, no approval on this obligor until back under"
    )


class ExposuresPublic(Output):
    items: list[ExposurePublic]
    next_cursor: str | None = None


class DifferencePublic(Output):
    """One field of one object where the mirror and the contracts' views disagree."""

    kind: str = Field(description="member, invoice, payable, claim, financing, … or count")
    key: str = Field(description="the object's id")
    field: str
    mirror: Any
    chain: Any


class ReconciliationPublic(Output):
    """IX-5: every mirrored object against the contracts' views at the mirror's checkpoint."""

    block_number: int = Field(ge=0, description="the checkpoint block compared at")
    block_hash: Hash32
    checked: dict[str, int] = Field(description="objects compared, by kind")
    ok: bool = Field(description="true when the mirror equals the chain")
    differences: list[DifferencePublic] = Field(description="the first `limit` differences")
    differences_total: int = Field(ge=0)


class AuditRecordPublic(Output):
    """One mutating request as the audit log holds it. ``hash`` is SHA-256 of ``prev_hash``
    followed by the canonical JSON of the other fields (see ``backend.audit_log``), so ``at``
    is given exactly as stored."""

    seq: int = Field(ge=1)
    at: str = Field(description="when it was answered (ISO 8601, UTC, milliseconds)")
    member: Address | None = Field(description="null: the caller was not authenticated")
    api_key_id: str | None
    method: Literal["POST", "PUT", "PATCH", "DELETE"]
    path: str
    status: int
    code: str | None = Field(description="the problem code of a refused request")
    idempotency_key: str | None
    request_sha256: Sha256Hex
    tx_hashes: list[str] = Field(description="transactions mined for it")
    request_id: str | None = Field(
        default=None,
        max_length=32,
        description="the request's X-Request-Id (also in its problem body and the access log)",
    )
    prev_hash: Sha256Hex
    hash: Sha256Hex


class AuditRecordsPublic(Output):
    items: list[AuditRecordPublic]
    next_cursor: str | None = None


class AnchorMismatchPublic(Output):
    """An anchor on chain that the log does not match."""

    index: int = Field(ge=0, description="the anchor's index in the AuditAnchor contract")
    seq: int = Field(ge=1, description="the record it anchors")
    head: Sha256Hex = Field(description="the anchored hash")
    status: Literal["rewritten", "missing"]


class AuditVerificationPublic(Output):
    """The audit chain walked from its first record: every hash, link and number."""

    ok: bool
    records: int = Field(ge=0, description="records found intact before the first bad one")
    first_bad_seq: int | None = Field(description="the first record that does not fit")
    reason: str | None
    anchors_compared: bool = Field(
        False,
        description="the log was compared with its anchors on chain (false: the node "
        "did not answer, the hash chain alone was walked)",
    )
    anchors_checked: int | None = Field(
        None, ge=0, description="anchors on chain compared with the log (null: not compared)"
    )
    anchors_matched: int | None = Field(
        None, ge=0, description="anchors whose record is in the log with the anchored hash"
    )
    anchored_seq: int | None = Field(
        None, ge=1, description="the last record anchored on chain (null: no anchor yet)"
    )
    anchored_at: Timestamp | None = Field(None, description="when the last anchor was mined")
    anchor_tx_hash: Hash32 | None = Field(None, description="the transaction of the last anchor")
    anchor_mismatches: list[AnchorMismatchPublic] = Field(
        default_factory=list,
        max_length=100,
        description="anchors the log does not match (at most 100): a record up to the anchor "
        "was rewritten, or the log was truncated below it",
    )
