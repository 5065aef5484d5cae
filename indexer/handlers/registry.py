"""The handler registry, keyed ``"Contract:Event"``, and the rows handlers share.

A handler gets the :class:`~indexer.unit_of_work.UnitOfWork`, the decoded event and its
block's timestamp, and changes rows the way the contract changed its storage.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from indexer.rows import Row, claim_status, exposure_row, obligor_account_row
from indexer.unit_of_work import UnitOfWork
from ledger.codec import DecodedEvent

Handler = Callable[[UnitOfWork, DecodedEvent, int], Awaitable[None]]
#: ``"Contract:Event"`` → its handler (filled by the feature modules as they are imported).
HANDLERS: dict[str, Handler] = {}


def handles(key: str) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of ``key`` (``"Contract:Event"``)."""

    def register(fn: Handler) -> Handler:
        if key in HANDLERS:
            raise RuntimeError(f"two handlers for {key}")
        HANDLERS[key] = fn
        return fn

    return register


def restatus(claim: Row) -> None:
    claim["status"] = claim_status(claim)


async def obligor_account(uow: UnitOfWork, obligor: str) -> Row:
    """The obligor's account row to change (made on first use, as the contract's mapping)."""
    if await uow.get("obligor_accounts", (obligor,)) is None:
        await uow.create("obligor_accounts", obligor_account_row(obligor))
    return await uow.edit("obligor_accounts", (obligor,))


async def exposure_of(uow: UnitOfWork, financier: str, obligor: str) -> Row:
    """A financier's exposure row on an obligor to change (made on first use)."""
    if await uow.get("exposures", (financier, obligor)) is None:
        await uow.create("exposures", exposure_row(financier, obligor))
    return await uow.edit("exposures", (financier, obligor))
