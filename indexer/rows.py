"""The ``events`` table's row of a decoded log, with the ids the API filters on pulled out.

Rows are tuples in the table's column order (:data:`EVENT_COLUMNS`), written as they are by
:meth:`indexer.bulk.BulkWriter.insert_tuples`: a backfill makes one per log, so nothing is
looked up per row that can be worked out once per event type (:class:`_Plan`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from db.types import table_of
from indexer import models
from ledger.codec import DecodedEvent

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
ZERO_HASH = "0x" + "00" * 32

Lookup = Callable[[Mapping[str, Any]], Any]


def _none(_args: Mapping[str, Any]) -> None:
    return None


def _first_nonzero(names: tuple[str, ...]) -> Lookup:
    if not names:
        return _none

    def lookup(args: Mapping[str, Any]) -> Any:
        for name in names:
            value = args[name]
            if value:
                return value
        return None

    return lookup


def _nonzero_hash(name: str) -> Lookup:
    def lookup(args: Mapping[str, Any]) -> Any:
        value = args[name]
        return value if value != ZERO_HASH and int(value, 16) else None

    return lookup


def _address(name: str) -> Lookup:
    return lambda args: args[name]


@dataclass(frozen=True)
class _Plan:
    """Where the filter columns of one event type come from."""

    claim: Lookup
    payable: Lookup
    financing: Lookup
    invoice: Lookup
    account: Lookup

    @classmethod
    def of(cls, args: Mapping[str, Any]) -> _Plan:
        names = set(args)
        account = next((n for n in _ACCOUNT_ARGS if n in names and isinstance(args[n], str)), None)
        return cls(
            claim=_first_nonzero(tuple(n for n in _CLAIM_ARGS if n in names)),
            payable=_first_nonzero(("payableId",) if "payableId" in names else ()),
            financing=_first_nonzero(("financingId",) if "financingId" in names else ()),
            invoice=_nonzero_hash("invoiceId") if "invoiceId" in names else _none,
            account=_address(account) if account else _none,
        )


_PLANS: dict[str, _Plan] = {}


def event_row(ev: DecodedEvent, block_time: int) -> tuple[Any, ...]:
    """The ``events`` row of ``ev`` (columns as :data:`EVENT_COLUMNS`)."""
    a = ev.args
    plan = _PLANS.get(ev.key)
    if plan is None:
        plan = _PLANS[ev.key] = _Plan.of(a)
    return (
        ev.block_number,
        ev.log_index,
        ev.block_hash,
        block_time,
        ev.tx_hash,
        ev.tx_index,
        ev.contract,
        ev.name,
        ev.args_json,
        plan.claim(a),
        plan.payable(a),
        plan.financing(a),
        plan.invoice(a),
        plan.account(a),
    )
