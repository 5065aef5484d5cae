"""The webhook outbox: what the dispatcher (``tierflow webhooks``) pushes to members.

Every business event the indexer mirrors (one with a handler: not the ERC-721/3525
compatibility logs) gets an ``outbox`` entry in the same batch, in the same transaction
(:meth:`indexer.unit_of_work.BatchUnitOfWork.outbox`), so an event is in the outbox if and
only if it is mirrored: a crash loses none and invents none.

An entry carries what a delivery's ``data`` is: the mirrored event and the object it changed,
as the mirror holds it right after the event (``{"event": {...}, "object": {...}}``), and the
object's key (``claim:12``, ``payable:3``, ``financing:7``, ``invoice:0x…``, ``member:0x…``):
deliveries to one endpoint keep chain order per key.

A reorganisation (:func:`retract`) deletes no entry: each entry of a rolled-back block is
marked ``reverted`` and followed by a new entry ``<Event>Reverted`` (``kind="reverted"``,
``reverts`` = the original's ``seq``, same object key), so an endpoint that already received
the event is told it is gone; one that never received it gets neither.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from db.types import table_of
from indexer import models
from indexer.unit_of_work import UnitOfWork
from ledger.codec import DecodedEvent, json_text

OUTBOX = table_of(models.OutboxEntry)

#: Events about a payable as a whole. Their object is the payable, though their row names a
#: piece too (``PayableIssued`` its root claim): whoever may see the payable sees these, and
#: the root piece is its holder's.
PAYABLE_EVENTS = ("PayableIssued", "PayableCancelled", "PayableOverdue", "PayableSettled")

#: The object an event is about, in order of precedence: (event-row column, kind, table).
_OBJECTS: tuple[tuple[int, str, str], ...] = (
    (11, "financing", "financings"),
    (9, "claim", "claims"),
    (10, "payable", "payables"),
    (12, "invoice", "invoices"),
    (13, "member", "members"),
)


def event_id(block_hash: str, log_index: int) -> str:
    """A delivery's public event id: the same log at the same place always gets the same."""
    digest = hashlib.sha256(f"{block_hash.lower()}:{log_index}".encode()).hexdigest()
    return f"evt_{digest[:32]}"


def reverted_id(original: str) -> str:
    return f"evt_{hashlib.sha256(f'{original}:reverted'.encode()).hexdigest()[:32]}"


#: ``"Contract:Event"`` → the start of an entry's JSON text (names JSON-quoted once).
_HEADS: dict[str, str] = {}


def _head(ev: DecodedEvent) -> str:
    head = _HEADS.get(ev.key)
    if head is None:
        head = _HEADS[ev.key] = (
            f'{{"event":{{"contract":{json.dumps(ev.contract)},"name":{json.dumps(ev.name)}'
        )
    return head


#: The columns of an entry as :func:`outbox_row` gives it (the table's, but ``seq``).
OUTBOX_COLUMNS = (
    "event_id",
    "kind",
    "event",
    "contract",
    "block_number",
    "log_index",
    "block_hash",
    "block_time",
    "object_key",
    "data",
    "reverted",
    "reverts",
)
if tuple(c.name for c in OUTBOX.columns)[1:] != OUTBOX_COLUMNS:  # pragma: no cover
    raise RuntimeError("indexer.outbox.OUTBOX_COLUMNS no longer matches the outbox table")


async def outbox_row(uow: UnitOfWork, ev: DecodedEvent, row: tuple[Any, ...]) -> tuple[Any, ...]:
    """The outbox entry of ``ev`` (``row`` is its ``events`` row), once its handler ran, in
    the order of :data:`OUTBOX_COLUMNS`."""
    kind, key, table = "contract", ev.contract, ""
    if ev.name in PAYABLE_EVENTS and row[10] is not None:
        kind, key, table = "payable", row[10], "payables"
    else:
        for column, name, tbl in _OBJECTS:
            if row[column] is not None:
                kind, key, table = name, row[column], tbl
                break
    obj = "null"
    if table:
        found = await uow.get(table, (key,))
        if found is not None:
            # ``{"type": kind, **found}`` as JSON, without copying the row into a new dict
            # (no mirror row has a ``type`` column; a row is never empty).
            obj = f'{{"type":"{kind}",{json_text(found)[1:]}'
    block_time = row[3]
    data = (
        f'{_head(ev)},"block_number":{ev.block_number},"block_hash":"{ev.block_hash}"'
        f',"block_time":{block_time},"tx_hash":"{ev.tx_hash}","log_index":{ev.log_index}'
        f',"args":{ev.args_json}}},"object":{obj}}}'
    )
    return (
        event_id(ev.block_hash, ev.log_index),
        "event",
        ev.name,
        ev.contract,
        ev.block_number,
        ev.log_index,
        ev.block_hash,
        block_time,
        f"{kind}:{key}",
        data,
        False,
        None,
    )


async def retract(conn: AsyncConnection, ancestor: int) -> int:
    """Mark the entries above ``ancestor`` reverted and append their retractions, in the
    caller's (the rollback's) transaction. Answers how many were retracted."""
    o = OUTBOX
    gone = (
        await conn.execute(
            select(o)
            .where(o.c.block_number > ancestor, o.c.kind == "event", o.c.reverted.is_(False))
            .order_by(o.c.seq)
        )
    ).all()
    if not gone:
        return 0
    await conn.execute(
        update(o)
        .where(o.c.block_number > ancestor, o.c.kind == "event", o.c.reverted.is_(False))
        .values(reverted=True)
    )
    await conn.execute(
        insert(o),
        [
            {
                "event_id": reverted_id(r.event_id),
                "kind": "reverted",
                "event": f"{r.event}Reverted",
                "contract": r.contract,
                "block_number": r.block_number,
                "log_index": r.log_index,
                "block_hash": r.block_hash,
                "block_time": r.block_time,
                "object_key": r.object_key,
                "data": json.dumps(
                    {"reverted_event_id": r.event_id, **json.loads(r.data)},
                    separators=(",", ":"),
                ),
                "reverted": False,
                "reverts": r.seq,
            }
            for r in gone
        ],
    )
    return len(gone)
