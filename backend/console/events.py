"""Chain events as rows of a table: which objects an event is about (linked), and its other
arguments written for people (amounts in yuan, times, hashes shortened)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, tzinfo
from typing import Any

from backend.console.fmt import is_address, is_hash, is_zero_hash, short_hex, when, yuan
from backend.console.urls import Urls

#: The contracts' events by contract (the filter's suggestions; any name is accepted).
KNOWN_EVENTS: dict[str, tuple[str, ...]] = {
    "MemberRegistry": (
        "MemberRegistered",
        "MemberKycRenewed",
        "MemberSuspended",
        "MemberReinstated",
    ),
    "InvoiceRegistry": (
        "InvoiceRegistered",
        "InvoiceConfirmed",
        "InvoiceVoided",
        "InvoiceUsed",
        "InvoiceReleased",
    ),
    "ClaimLedger": (
        "PayableIssued",
        "PayableCancelled",
        "PayableOverdue",
        "PayableSettled",
        "ProgramLimitSet",
        "ClaimSplit",
        "ClaimTransferred",
        "ClaimFrozen",
        "ClaimUnfrozen",
        "ClaimSettled",
        "FinancingDeskBound",
        "TransferValue",
        "ApprovalValue",
        "SlotChanged",
    ),
    "FinancingDesk": (
        "FinancingApplied",
        "FinancingApproved",
        "FinancingRejected",
        "FinancingWithdrawn",
        "FinancingExpired",
        "ExposureLimitSet",
        "ExposureReleased",
    ),
}

#: Arguments naming a piece, a payable, a financing request or an invoice.
CLAIM_ARGS = ("claimId", "parentId", "rootClaimId", "financedClaimId")
PAYABLE_ARGS = ("payableId",)
FINANCING_ARGS = ("financingId",)
INVOICE_ARGS = ("invoiceId",)
#: Arguments that are amounts in fen, and times in UNIX seconds.
AMOUNT_ARGS = frozenset(
    {
        "amount",
        "value",
        "faceValue",
        "advance",
        "discount",
        "fees",
        "unsettledValue",
        "programLimit",
        "exposureLimit",
    }
)
TIME_ARGS = frozenset({"dueDate", "expiresAt", "issueDate", "kycExpiresAt"})


@dataclass(frozen=True, slots=True)
class Link:
    """An object an event is about: ``kind`` (piece, payable, financing, invoice, member), its
    label and where the console shows it (``href`` may be empty)."""

    kind: str
    label: str
    href: str
    title: str = ""


@dataclass(frozen=True, slots=True)
class Detail:
    name: str
    value: str
    title: str = ""


@dataclass(frozen=True, slots=True)
class EventRow:
    block_number: int
    log_index: int
    time: str
    tx_hash: str
    tx_href: str | None
    contract: str
    event: str
    objects: list[Link]
    details: list[Detail]


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def event_row(
    event: Mapping[str, Any],
    urls: Urls,
    members: Mapping[str, Mapping[str, Any]],
    zone: tzinfo = UTC,
) -> EventRow:
    """One ``EventPublic`` (``GET /v1/audit/events`` item, or a history item) as a row."""
    args: Mapping[str, Any] = event.get("args") or {}
    objects: list[Link] = []
    details: list[Detail] = []
    for name, value in args.items():
        number = _as_int(value)
        if name in CLAIM_ARGS and number:
            objects.append(Link("piece", f"piece #{number}", urls.claim(number), name))
        elif name in PAYABLE_ARGS and number:
            objects.append(
                Link("payable", f"payable #{number}", urls.payable(number), "lineage tree")
            )
        elif name in FINANCING_ARGS and number:
            objects.append(
                Link(
                    "financing",
                    f"financing #{number}",
                    urls.events(financing_id=number),
                    "events of this financing request",
                )
            )
        elif name in INVOICE_ARGS and is_hash(value) and not is_zero_hash(value):
            objects.append(
                Link(
                    "invoice",
                    f"invoice {short_hex(value)}",
                    urls.events(invoice_id=value.lower()),
                    value,
                )
            )
        elif is_address(value) and int(value, 16) != 0:
            entry = members.get(value.lower()) or {}
            label = str(entry.get("name") or short_hex(value))
            objects.append(Link("member", f"{name}: {label}", urls.account(value) or "", value))
        elif name in AMOUNT_ARGS and number is not None:
            details.append(Detail(name, yuan(number), f"{number} fen"))
        elif name in TIME_ARGS and number is not None:
            details.append(Detail(name, when(number, zone), str(number)))
        elif isinstance(value, str) and is_hash(value):
            details.append(Detail(name, "—" if is_zero_hash(value) else short_hex(value), value))
        elif isinstance(value, list):
            shown = ", ".join(short_hex(str(v)) if is_hash(v) else str(v) for v in value)
            details.append(Detail(name, shown, ""))
        elif value is not None:
            details.append(Detail(name, str(value)))
    tx_hash = str(event.get("tx_hash", ""))
    return EventRow(
        block_number=int(event.get("block_number", 0)),
        log_index=int(event.get("log_index", 0)),
        time=when(event.get("block_time"), zone),
        tx_hash=tx_hash,
        tx_href=urls.tx(tx_hash),
        contract=str(event.get("contract", "")),
        event=str(event.get("event", "")),
        objects=objects,
        details=details,
    )
