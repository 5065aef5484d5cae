"""Event handlers: each applies one contract event to the mirror's rows.

Handlers are keyed ``"Contract:Event"`` and named after the event (``ClaimSplit`` →
``on_claim_split``), one module per feature: :mod:`~indexer.handlers.members`,
:mod:`~indexer.handlers.invoices`, :mod:`~indexer.handlers.payables`,
:mod:`~indexer.handlers.claims`, :mod:`~indexer.handlers.financing`. They get the
:class:`~indexer.unit_of_work.UnitOfWork` (a protocol: the indexer's batch, or an in-memory
one in unit tests), the event and its block's timestamp, and change rows the way the contract
changed its storage, so the mirror equals the contracts' views after every transaction (I-10,
IX-5); every new row comes from :mod:`indexer.rows`. Events without a handler (the
ERC-721/3525 compatibility events, admin hand-over) are kept as raw events only.

:func:`prefetch_keys` lists, for a batch, the rows its handlers will touch, so they are loaded
in bulk before the batch is applied.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from indexer.handlers import claims, financing, invoices, members, payables
from indexer.handlers.members import ROLE_BITS
from indexer.handlers.registry import HANDLERS, Handler, handles
from indexer.unit_of_work import Key
from ledger.codec import DecodedEvent

__all__ = [
    "HANDLERS",
    "Handler",
    "claims",
    "financing",
    "handles",
    "invoices",
    "members",
    "payables",
    "prefetch_keys",
]

# -- prefetch --------------------------------------------------------------------------------

_CLAIM_ARGS = ("claimId", "parentId", "financedClaimId", "rootClaimId")


def prefetch_keys(events: Iterable[DecodedEvent]) -> dict[str, set[Key]]:
    """The rows the handlers of ``events`` read, by table (loaded in bulk before applying)."""
    wanted: dict[str, set[Key]] = defaultdict(set)
    for ev in events:
        if ev.key not in HANDLERS:
            continue
        a: Any = ev.args
        for name in _CLAIM_ARGS:
            if a.get(name):
                wanted["claims"].add((a[name],))
        if "payableId" in a:
            wanted["payables"].add((a["payableId"],))
        if "financingId" in a:
            wanted["financings"].add((a["financingId"],))
        if "invoiceId" in a and ev.contract == "InvoiceRegistry":
            wanted["invoices"].add((a["invoiceId"],))
        if "account" in a:
            wanted["members"].add((a["account"],))
            for role_id in ROLE_BITS:
                wanted["role_grants"].add((role_id, a["account"]))
        if "obligor" in a:
            wanted["obligor_accounts"].add((a["obligor"],))
            if "financier" in a:
                wanted["exposures"].add((a["financier"], a["obligor"]))
    return wanted
