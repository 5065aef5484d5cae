"""Fakes for the unit family: no anvil, no database server.

- :class:`MemoryUnitOfWork`: the indexer's :class:`~indexer.unit_of_work.UnitOfWork` over
  dicts, to apply handlers to.
- :func:`event`: a :class:`~ledger.codec.DecodedEvent` as the codec would give it.
- :class:`Mirror`: a SQLite file with the mirror's and the API's tables, filled through the
  indexer's own handlers (:meth:`Mirror.apply`) or row builders (:meth:`Mirror.insert`).
- :class:`FakeLedger`: a :class:`~backend.ports.LedgerPort` that records the calls it is
  given, answers each with the events a test scripts for it, and applies them to the
  :class:`Mirror` (so a service's read after its write sees it, as with a live indexer).
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from backend import models as api_models
from backend.auth import Caller
from backend.ports import HostedAccount, Mined, Ports, WriteContext
from db.engine import create_engine, sessions
from db.types import table_of
from indexer import models as mirror_models
from indexer.handlers import HANDLERS
from indexer.rows import Row, event_row
from indexer.unit_of_work import STATE_TABLES, BatchUnitOfWork, Key, primary_key
from ledger.bindings import ClaimStatus, ClaimView
from ledger.calls import ContractCall
from ledger.codec import DecodedEvent
from ledger.errors import ContractRevert
from ledger.roles import Role

ADDRESSES = {
    name: "0x" + f"{i:02x}" * 20
    for i, name in enumerate(
        [
            "operator",
            "core",
            "sup1",
            "sup2",
            "sup3",
            "bank",
            "agent",
            "auditor",
            "stranger",
            "sup4",
        ],
        start=1,
    )
}
_CONTRACT_OF = {
    "MemberRegistry": "0x" + "a1" * 20,
    "InvoiceRegistry": "0x" + "a2" * 20,
    "ClaimLedger": "0x" + "a3" * 20,
    "FinancingDesk": "0x" + "a4" * 20,
}
_ROLES = {
    "operator": {Role.OPERATOR},
    "core": {Role.CORE_ENTERPRISE},
    "sup1": {Role.SUPPLIER},
    "sup2": {Role.SUPPLIER},
    "sup3": {Role.SUPPLIER},
    "sup4": {Role.SUPPLIER},
    "bank": {Role.FINANCIER},
    "agent": {Role.CLEARING_AGENT},
    "auditor": {Role.AUDITOR},
    "stranger": set(),
}


def address(name: str) -> str:
    """The address of a cast member (``sup1``, ``bank`` …): deterministic, checksummed."""
    from eth_utils.address import to_checksum_address

    return to_checksum_address(ADDRESSES[name])


def caller(name: str) -> Caller:
    """An authenticated caller of the cast, with its roles."""
    return Caller(address(name), frozenset(_ROLES[name]), "active", f"key-{name}")


def write(name: str) -> WriteContext:
    """A write by ``name`` (no idempotency journal)."""
    return WriteContext(caller(name), request_id=f"req-{name}")


def hx(value: int, width: int = 32) -> str:
    """A 0x-hex word (a bytes32 as the codec gives it)."""
    return "0x" + f"{value:0{2 * width}x}"


_serial = itertools.count(1)


#: Arguments a decoded event always carries that tests may leave out, and their zero values
#: (``indexer.rows.event_row`` plans an event type's columns from the first one it sees, as
#: the decoder gives every argument of the ABI: a test's event without one after another
#: test's with it would not be what the chain sends).
_ZERO_ARGS: dict[str, dict[str, Any]] = {
    "ClaimLedger:ClaimTransferred": {"invoiceId": "0x" + "00" * 32},
}


def event(key: str, *, block: int = 10, log_index: int | None = None, **args: Any) -> DecodedEvent:
    """A decoded event ``"Contract:Event"`` with ``args`` (in the given order; arguments of
    :data:`_ZERO_ARGS` left out are added at the end as zeros)."""
    for arg, zero in _ZERO_ARGS.get(key, {}).items():
        args.setdefault(arg, zero)
    contract, name = key.split(":")
    n = next(_serial)
    return DecodedEvent(
        block_number=block,
        block_hash=hx(block),
        tx_hash=hx(1_000_000 + n),
        tx_index=0,
        log_index=n if log_index is None else log_index,
        address=_CONTRACT_OF[contract],
        contract=contract,
        name=name,
        args=dict(args),
        args_json=json.dumps(args, separators=(",", ":")),
        key=key,
    )


class MemoryUnitOfWork:
    """A :class:`~indexer.unit_of_work.UnitOfWork` over dicts (``rows[table][key]``)."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[Key, Row]] = defaultdict(dict)
        self.appended: dict[str, list[Row]] = defaultdict(list)
        self.block = 0

    @staticmethod
    def key_of(name: str, row: Mapping[str, Any]) -> Key:
        return tuple(row[c] for c in primary_key(STATE_TABLES[name]))

    async def get(self, name: str, key: Key) -> Row | None:
        return self.rows[name].get(key)

    async def need(self, name: str, key: Key) -> Row:
        row = self.rows[name].get(key)
        if row is None:
            raise LookupError(f"{name} {key!r} is not there")
        return row

    async def edit(self, name: str, key: Key) -> Row:
        return await self.need(name, key)

    async def create(self, name: str, row: Row) -> Row:
        key = self.key_of(name, row)
        if key in self.rows[name]:
            raise LookupError(f"{name} {key!r} exists already")
        self.rows[name][key] = row
        return row

    async def upsert(self, name: str, row: Row) -> Row:
        self.rows[name][self.key_of(name, row)] = row
        return row

    async def remove(self, name: str, key: Key) -> None:
        self.rows[name].pop(key, None)

    def append(self, name: str, row: Row) -> None:
        self.appended[name].append(row)

    async def apply(self, *events: DecodedEvent, block_time: int = 1_000) -> None:
        """Apply ``events`` in order through the indexer's handlers."""
        for ev in events:
            self.block = ev.block_number
            await HANDLERS[ev.key](self, ev, block_time)


@dataclass
class Mirror:
    """A SQLite file with every table of the mirror and the API (see the module docstring)."""

    engine: AsyncEngine
    block_time: int = 1_000

    @classmethod
    async def create(cls, directory: Path) -> Mirror:
        engine = create_engine(f"sqlite+aiosqlite:///{directory / 'unit.db'}")
        async with engine.begin() as conn:
            await conn.run_sync(mirror_models.Base.metadata.create_all)
            await conn.run_sync(api_models.Base.metadata.create_all)
        return cls(engine)

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        return sessions(self.engine)

    async def insert(self, model: type[Any], *rows: Row) -> None:
        """Insert rows (from :mod:`indexer.rows` builders) into ``model``'s table."""
        async with self.engine.begin() as conn:
            await conn.execute(insert(table_of(model)), list(rows))

    async def apply(self, events: Iterable[DecodedEvent]) -> None:
        """Apply ``events`` as the indexer does: handlers, the events table, one commit."""
        uow = BatchUnitOfWork()
        async with self.engine.connect() as conn:
            uow.bind(conn)
            uow.begin(journal_from=2**62)
            for ev in events:
                uow.block = ev.block_number
                uow.append_tuple("events", event_row(ev, self.block_time))
                handler = HANDLERS.get(ev.key)
                if handler is not None:
                    await handler(uow, ev, self.block_time)
            batch = uow.seal(conn.dialect)
            if conn.in_transaction():
                await conn.commit()
            async with conn.begin():
                await batch.write(conn)

    async def dispose(self) -> None:
        await self.engine.dispose()


#: What a scripted call answers: the events it emits, or a revert to raise.
Script = Callable[[ContractCall], list[DecodedEvent]]


@dataclass
class FakeLedger:
    """A :class:`~backend.ports.LedgerPort` for unit tests (see the module docstring)."""

    mirror: Mirror | None = None
    now: int = 1_000_000
    local: bool = True
    gas_price_wei: int = 0
    balances: dict[str, int] = field(default_factory=dict)
    pending: dict[int, ClaimView] = field(default_factory=dict)
    #: The clock's grace, and seconds it stood still per payable (freezes, pauses).
    grace_period: int = 7 * 86_400
    stopped: dict[int, int] = field(default_factory=dict)
    #: Answers per contract function name (consumed in order; the last one repeats).
    scripts: dict[str, list[Script | list[DecodedEvent] | ContractRevert]] = field(
        default_factory=dict
    )
    #: Every call submitted, with the address it was sent as.
    submitted: list[tuple[str, ContractCall]] = field(default_factory=list)
    funded: list[tuple[str, str, int]] = field(default_factory=list)
    accounts: list[HostedAccount] = field(default_factory=list)
    mirrored: bool = True
    _block: int = 100

    def on(self, function: str, answer: Script | list[DecodedEvent] | ContractRevert) -> None:
        """Answer the next call of ``function`` with ``answer``."""
        self.scripts.setdefault(function, []).append(answer)

    @property
    def calls(self) -> list[ContractCall]:
        return [c for _, c in self.submitted]

    async def submit(self, write: WriteContext, call: ContractCall) -> Mined:
        self.submitted.append((write.caller.address, call))
        queue = self.scripts.get(call.function, [])
        answer: Any = queue.pop(0) if len(queue) > 1 else (queue[0] if queue else [])
        if isinstance(answer, ContractRevert):
            raise answer
        events = answer(call) if callable(answer) else list(answer)
        self._block += 1
        events = [ev._replace(block_number=self._block) for ev in events]
        if self.mirror is not None and self.mirrored:
            await self.mirror.apply(events)
        tx_hash = hx(self._block)
        write.tx_hashes.append(tx_hash)
        return Mined(tx_hash, self._block, tuple(events), self.mirrored)

    async def send_value(self, write: WriteContext, to: str, value: int) -> Mined:
        self.funded.append((write.caller.address, to, value))
        self.balances[to] = self.balances.get(to, 0) + value
        self._block += 1
        return Mined(hx(self._block), self._block, (), False)

    def new_account(self) -> HostedAccount:
        account = HostedAccount(address(f"sup{len(self.accounts) + 1}"), '{"kdf": "fake"}')
        self.accounts.append(account)
        return account

    async def chain_time(self) -> int:
        return self.now

    async def block_time(self, block_number: int) -> int:
        return self.now

    async def gas_price(self) -> int:
        return self.gas_price_wei

    async def balance(self, address: str) -> int:
        return self.balances.get(address, 0)

    async def pending_claim(self, claim_id: int) -> ClaimView:
        return self.pending[claim_id]

    async def overdue_from(self, due_dates: dict[int, int]) -> dict[int, int]:
        return {
            pid: due + self.grace_period + self.stopped.get(pid, 0)
            for pid, due in due_dates.items()
        }

    async def wait_for_mirror(self, block: int, block_hash: str | None = None) -> bool:
        return self.mirrored

    async def mirrored_block(self) -> int | None:
        return self._block

    async def local_chain(self) -> bool:
        return self.local

    async def set_chain_time(self, until: int) -> int:
        self.now = until
        self._block += 1
        return self._block

    async def canonical(self, tx_hashes: list[str]) -> bool:
        return True


def ports(mirror: Mirror, ledger: FakeLedger) -> Ports:
    return Ports(mirror.sessions, ledger)


def claim_view(claim_id: int, amount: int, holder: str, due_date: int) -> ClaimView:
    """A piece as the chain's ``claim`` view gives it (for :attr:`FakeLedger.pending`)."""
    return ClaimView(
        claim_id, 1, None, 0, holder, amount, 0, ClaimStatus.ACTIVE, False, False, due_date
    )
