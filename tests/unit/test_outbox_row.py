"""An outbox entry as the indexer writes it (:func:`indexer.outbox.outbox_row`): a tuple in the
table's column order whose ``data`` is the JSON the webhook delivers, with the object as the
mirror holds it right after the event."""

from __future__ import annotations

import json
from typing import Any

from db.types import table_of
from indexer import models
from indexer.outbox import OUTBOX_COLUMNS, event_id, outbox_row
from indexer.rows import claim_row, event_row, member_row
from tests.support.fakes import MemoryUnitOfWork, address, event, hx


def test_the_columns_are_the_tables_but_its_sequence() -> None:
    names = [c.name for c in table_of(models.OutboxEntry).columns]
    assert (names[0], tuple(names[1:])) == ("seq", OUTBOX_COLUMNS)


async def test_an_entry_carries_the_event_and_the_object_as_mirrored() -> None:
    uow = MemoryUnitOfWork()
    claim = claim_row(7, 3, 2, 1, address("sup2"), 10**70 + 5, 1_700_000_000, None, 9)
    uow.rows["claims"][(7,)] = claim
    transfer: dict[str, Any] = {"from": address("sup1"), "to": address("sup2"), "invoiceId": hx(0)}
    ev = event("ClaimLedger:ClaimTransferred", block=12, claimId=7, **transfer)
    entry = dict(zip(OUTBOX_COLUMNS, await outbox_row(uow, ev, event_row(ev, 1_234)), strict=True))

    data = json.loads(entry.pop("data"))
    assert data["object"] == {"type": "claim", **claim}
    assert data["event"] == {
        "contract": "ClaimLedger",
        "name": "ClaimTransferred",
        "block_number": 12,
        "block_hash": hx(12),
        "block_time": 1_234,
        "tx_hash": ev.tx_hash,
        "log_index": ev.log_index,
        "args": json.loads(ev.args_json),
    }
    assert entry == {
        "event_id": event_id(hx(12), ev.log_index),
        "kind": "event",
        "event": "ClaimTransferred",
        "contract": "ClaimLedger",
        "block_number": 12,
        "log_index": ev.log_index,
        "block_hash": hx(12),
        "block_time": 1_234,
        "object_key": "claim:7",
        "reverted": False,
        "reverts": None,
    }


async def test_the_objects_text_is_what_json_dumps_gives() -> None:
    uow = MemoryUnitOfWork()
    member = member_row(address("sup1"), 2_000_000_000, 5, 3)
    member["suspension_reason"] = 'a "quoted" ünïcode \\ reason'
    uow.rows["members"][(address("sup1"),)] = member
    ev = event(
        "MemberRegistry:MemberSuspended", account=address("sup1"), reasonHash=hx(7), automatic=False
    )
    entry = await outbox_row(uow, ev, event_row(ev, 1))
    expected = json.dumps({"type": "member", **member}, separators=(",", ":"))
    assert entry[OUTBOX_COLUMNS.index("data")].endswith(f',"object":{expected}}}')


async def test_an_object_not_in_the_mirror_is_null() -> None:
    uow = MemoryUnitOfWork()
    ev = event("ClaimLedger:ClaimFrozen", claimId=99, reasonHash=hx(0))
    entry = await outbox_row(uow, ev, event_row(ev, 1))
    assert entry[OUTBOX_COLUMNS.index("data")].endswith(',"object":null}')
    assert entry[OUTBOX_COLUMNS.index("object_key")] == "claim:99"
