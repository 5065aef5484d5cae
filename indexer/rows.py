"""The mirror's rows, each built by one function: whoever makes a row makes it here.

A domain row (a member, an invoice, a payable, a claim piece, a financing …) is a plain dict
keyed by its table's column names, as the unit of work holds it; the handlers create them on
the event that creates the object, and the API builds the same row from a mined receipt when
the mirror is late (:func:`claim_row` is the claim piece whoever creates it: a payable's
root, a split, or the API's answer before the mirror shows it). :func:`as_record` gives a row
the attribute access of a mapped object, for code written against the ORM.

The ``events`` table's row of a decoded log (:func:`event_row`) is a tuple in the table's
column order (:data:`EVENT_COLUMNS`), written as it is by
:meth:`indexer.bulk.BulkWriter.insert_tuples`: a backfill makes one per log, so nothing is
looked up per row that can be worked out once per event type (:func:`_row_maker`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import SimpleNamespace
from typing import Any, cast

from db.types import table_of
from indexer import models
from indexer.unit_of_work import Row as Row
from ledger.codec import DecodedEvent

ZERO_HASH = "0x" + "00" * 32


def as_record(row: Mapping[str, Any]) -> Any:
    """``row`` with attribute access (``record.holder``), as a mapped object reads."""
    return SimpleNamespace(**row)


def hash_or_none(value: str) -> str | None:
    """A ``bytes32`` as the mirror keeps it: ``None`` for zero (none given)."""
    return None if value == ZERO_HASH else value


# -- domain rows ----------------------------------------------------------------------------


def member_row(address: str, kyc_expires_at: int, roles: int, registered_block: int) -> Row:
    return {
        "address": address,
        "status": "active",
        "kyc_expires_at": kyc_expires_at,
        "roles": roles,
        "suspension_reason": None,
        "registered_block": registered_block,
    }


def role_grant_row(role: str, account: str, granted_block: int) -> Row:
    return {"role": role, "account": account, "granted_block": granted_block}


def platform_state_row(key: str, value: str) -> Row:
    return {"key": key, "value": value}


def invoice_row(
    invoice_id: str,
    seller: str,
    buyer: str,
    amount: int,
    issue_date: int,
    document_hash: str,
    registered_block: int,
) -> Row:
    """A newly registered invoice."""
    return {
        "id": invoice_id,
        "seller": seller,
        "buyer": buyer,
        "amount": amount,
        "issue_date": issue_date,
        "document_hash": document_hash,
        "status": "registered",
        "payable_id": None,
        "claim_id": None,
        "registered_block": registered_block,
    }


def payable_row(
    payable_id: int,
    obligor: str,
    supplier: str,
    face_value: int,
    due_date: int,
    issued_at: int,
    clearing_agent: str | None,
    root_claim_id: int,
    long_term: bool,
    issued_block: int,
) -> Row:
    """A newly issued payable (``clearing_agent`` ``None``: none named)."""
    return {
        "id": payable_id,
        "obligor": obligor,
        "supplier": supplier,
        "face_value": face_value,
        "settled_value": 0,
        "due_date": due_date,
        "issued_at": issued_at,
        "clearing_agent": clearing_agent,
        "root_claim_id": root_claim_id,
        "long_term": long_term,
        "status": "issued",
        "issued_block": issued_block,
    }


def payable_invoice_row(payable_id: int, position: int, invoice_id: str, block_number: int) -> Row:
    return {
        "payable_id": payable_id,
        "position": position,
        "invoice_id": invoice_id,
        "block_number": block_number,
    }


def claim_row(
    claim_id: int,
    payable_id: int,
    parent_id: int | None,
    depth: int,
    holder: str,
    amount: int,
    due_date: int,
    invoice_id: str | None,
    created_block: int,
) -> Row:
    """A new claim piece: a payable's root (``parent_id`` ``None``, depth 0) or a split."""
    return {
        "id": claim_id,
        "payable_id": payable_id,
        "parent_id": parent_id,
        "depth": depth,
        "holder": holder,
        "amount": amount,
        "locked_amount": 0,
        "status": "active",
        "frozen": False,
        "financed": False,
        "due_date": due_date,
        "invoice_id": invoice_id,
        "created_block": created_block,
    }


def claim_status(claim: Mapping[str, Any]) -> str:
    """The contract's ``_status``: cancelled > settled > frozen > financed > locked > active."""
    if claim["status"] in ("cancelled", "settled"):
        return str(claim["status"])
    if claim["frozen"]:
        return "frozen"
    if claim["financed"]:
        return "financed"
    if claim["locked_amount"]:
        return "locked"
    return "active"


def transferred(claim: Row, to: str) -> Row:
    """``claim`` passed whole to ``to`` (in place): a transfer ends a financier's holding (a
    financing approval marks it again just after)."""
    claim["holder"] = to
    claim["financed"] = False
    claim["status"] = claim_status(claim)
    return claim


def financing_row(
    financing_id: int,
    claim_id: int,
    applicant: str,
    financier: str,
    obligor: str,
    amount: int,
    expires_at: int,
    applied_block: int,
    min_advance: int = 0,
    recourse: bool = False,
) -> Row:
    """A new financing application (terms zero until it is approved; ``min_advance`` and
    ``recourse`` are what the applicant committed to)."""
    return {
        "id": financing_id,
        "claim_id": claim_id,
        "applicant": applicant,
        "financier": financier,
        "obligor": obligor,
        "amount": amount,
        "expires_at": expires_at,
        "status": "applied",
        "advance": 0,
        "discount": 0,
        "fees": 0,
        "annual_rate_bps": 0,
        "recourse": recourse,
        "min_advance": min_advance,
        "registration_no": None,
        "disbursement_ref": None,
        "financed_claim_id": None,
        "reason_hash": None,
        "applied_block": applied_block,
    }


def obligor_account_row(obligor: str) -> Row:
    return {
        "obligor": obligor,
        "program_limit": 0,
        "outstanding": 0,
        "previous_overdue_at": 0,
        "last_overdue_at": 0,
    }


def exposure_row(financier: str, obligor: str) -> Row:
    return {"financier": financier, "obligor": obligor, "outstanding": 0, "exposure_limit": 0}


def settlement_row(
    claim_id: int,
    payable_id: int,
    holder: str,
    amount: int,
    payment_ref: str,
    block_number: int,
    tx_hash: str,
) -> Row:
    return {
        "claim_id": claim_id,
        "payable_id": payable_id,
        "holder": holder,
        "amount": amount,
        "payment_ref": payment_ref,
        "block_number": block_number,
        "tx_hash": tx_hash,
    }


# -- event rows -----------------------------------------------------------------------------

EVENT_COLUMNS = (
    "block_number",
    "log_index",
    "block_hash",
    "block_time",
    "tx_hash",
    "tx_index",
    "contract",
    "event",
    "args",
    "claim_id",
    "payable_id",
    "financing_id",
    "invoice_id",
    "account",
)
if tuple(c.name for c in table_of(models.Event).columns) != EVENT_COLUMNS:  # pragma: no cover
    raise RuntimeError("indexer.rows.EVENT_COLUMNS no longer matches the events table")

#: The claim a log is about: its own id, else the piece it was split from or financed out of.
_CLAIM_ARGS = ("claimId", "parentId", "financedClaimId", "rootClaimId")
#: The member a log is about: the first of these the event has (an address).
_ACCOUNT_ARGS = ("account", "holder", "applicant", "seller", "obligor", "financier", "to")
#: :func:`event_row`'s maker of one event type's rows.
RowMaker = Callable[[DecodedEvent, int], tuple[Any, ...]]
#: Where a :class:`DecodedEvent`'s fields sit in its tuple (the compiled makers index it).
_AT = {name: position for position, name in enumerate(DecodedEvent._fields)}
#: The event's field of an ``events`` column named otherwise.
_FIELD_OF = {"event": "name", "args": "args_json"}


def _first_nonzero(names: list[str]) -> str:
    """The expression of the first of ``names`` whose argument is non-zero, else ``None``."""
    if not names:
        return "None"
    return " or ".join(f"a[{name!r}]" for name in names) + " or None"


def _row_maker(args: Mapping[str, Any]) -> RowMaker:
    """The ``events`` row maker of an event type whose arguments are named as ``args``.

    One function per event type, compiled from its argument names once: the row's tuple in
    one expression, each filter column read straight from the arguments (a closure per
    column called for every row cost a fifth of making it). Names go into the source only
    as ``repr`` string literals.
    """
    names = set(args)
    account = next((n for n in _ACCOUNT_ARGS if n in names and isinstance(args[n], str)), None)
    invoice = "None"
    if "invoiceId" in names:
        invoice = "(v if (v := a['invoiceId']) != ZERO_HASH and int(v, 16) else None)"
    columns = (
        _first_nonzero([n for n in _CLAIM_ARGS if n in names]),
        _first_nonzero(["payableId"] if "payableId" in names else []),
        _first_nonzero(["financingId"] if "financingId" in names else []),
        invoice,
        f"a[{account!r}]" if account else "None",
    )
    fields = ", ".join(
        "t" if name == "block_time" else f"ev[{_AT[_FIELD_OF.get(name, name)]}]"
        for name in EVENT_COLUMNS[:9]
    )
    source = (
        f"def row(ev, t):\n    a = ev[{_AT['args']}]\n    return ({fields}, {', '.join(columns)})\n"
    )
    namespace: dict[str, Any] = {"ZERO_HASH": ZERO_HASH}
    exec(source, namespace)
    return cast(RowMaker, namespace["row"])


_MAKERS: dict[str, RowMaker] = {}


def event_row(ev: DecodedEvent, block_time: int) -> tuple[Any, ...]:
    """The ``events`` row of ``ev`` (columns as :data:`EVENT_COLUMNS`): the claim, payable,
    financing, invoice and account columns are the event's first non-zero claim id (its
    own, else its parent's, its financed piece's, its root's), payable id, financing id,
    non-zero invoice hash and the first address among :data:`_ACCOUNT_ARGS`."""
    make = _MAKERS.get(ev.key)
    if make is None:
        make = _MAKERS[ev.key] = _row_maker(ev.args)
    return make(ev, block_time)
