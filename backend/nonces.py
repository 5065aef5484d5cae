"""Nonces in SQL, for API workers on several hosts signing for the same member (SPEC §5).

:class:`SqlNonceStore` implements :class:`ledger.nonces.NonceStore` on a ``nonces`` row per
``(chain id, address)``: each allocation is one short transaction that locks the row
(``SELECT … FOR UPDATE`` on PostgreSQL; SQLite takes its database write lock with
``BEGIN IMMEDIATE`` semantics through the first write), reserves ``max(stored, chain
pending)`` and stores the next one. The sender's per-account asyncio lock still orders a
worker's own broadcasts; this makes the workers agree with each other.

An allocation (every write's) is one statement: an upsert that makes the row, or locks it
and moves it on, and returns what it stored (``INSERT … ON CONFLICT DO UPDATE … RETURNING``,
SQLite 3.35+ and PostgreSQL), built once per dialect. A hosted write runs it in the
transaction that records its signed transaction (:func:`allocate_in`), not one of its own.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, case, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from backend.models import NonceRow
from db.types import table_of

_NONCES = table_of(NonceRow)


def _allocation(dialect: str) -> Any:
    """``next_nonce := max(stored, chain_next) + count`` (a missing row: ``chain_next +
    count``; a row holding -1, made by :meth:`SqlNonceStore._locked`, counts as none),
    returning the stored value."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    chain_next = bindparam("p_chain_next", type_=_NONCES.c.next_nonce.type)
    count = bindparam("p_count", type_=_NONCES.c.next_nonce.type)
    stored = _NONCES.c.next_nonce
    return (
        insert(_NONCES)
        .values(
            chain_id=bindparam("p_chain_id", type_=_NONCES.c.chain_id.type),
            address=bindparam("p_address", type_=_NONCES.c.address.type),
            next_nonce=chain_next + count,
        )
        .on_conflict_do_update(
            index_elements=[_NONCES.c.chain_id, _NONCES.c.address],
            set_={"next_nonce": case((stored > chain_next, stored), else_=chain_next) + count},
        )
        .returning(_NONCES.c.next_nonce)
    )


_ALLOCATE = {dialect: _allocation(dialect) for dialect in ("sqlite", "postgresql")}


async def allocate_in(
    conn: AsyncConnection, chain_id: int, address: str, chain_next: int, count: int = 1
) -> int:
    """:meth:`SqlNonceStore.allocate` within the caller's transaction on ``conn``: the row stays
    locked (SQLite: the database's write lock) until it commits, and a rollback takes the
    nonces back with everything else (the gateway's record of a signed transaction,
    :class:`ledger.sender.Recorder`)."""
    stored = (
        await conn.execute(
            _ALLOCATE[conn.dialect.name],
            {
                "p_chain_id": chain_id,
                "p_address": address,
                "p_chain_next": chain_next,
                "p_count": count,
            },
        )
    ).scalar_one()
    return int(stored) - count


class SqlNonceStore:
    """A :class:`~ledger.nonces.NonceStore` shared through the database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def _locked(self, conn: AsyncConnection, chain_id: int, address: str) -> int | None:
        dialect = conn.dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        # Make sure the row exists, so there is something to lock.
        await conn.execute(
            insert(_NONCES)
            .values(chain_id=chain_id, address=address, next_nonce=-1)
            .on_conflict_do_nothing()
        )
        query = select(_NONCES.c.next_nonce).where(
            _NONCES.c.chain_id == chain_id, _NONCES.c.address == address
        )
        if dialect == "postgresql":
            query = query.with_for_update()
        value = (await conn.execute(query)).scalar_one()
        return None if value < 0 else int(value)

    async def _store(self, conn: AsyncConnection, chain_id: int, address: str, value: int) -> None:
        await conn.execute(
            update(_NONCES)
            .where(_NONCES.c.chain_id == chain_id, _NONCES.c.address == address)
            .values(next_nonce=value)
        )

    async def allocate(self, chain_id: int, address: str, chain_next: int, count: int = 1) -> int:
        async with self.engine.begin() as conn:
            return await allocate_in(conn, chain_id, address, chain_next, count)

    async def release(self, chain_id: int, address: str, first: int, count: int = 1) -> bool:
        async with self.engine.begin() as conn:
            stored = await self._locked(conn, chain_id, address)
            if stored != first + count:
                return False
            await self._store(conn, chain_id, address, first)
            return True

    async def reset(self, chain_id: int, address: str, next_nonce: int) -> None:
        async with self.engine.begin() as conn:
            await self._locked(conn, chain_id, address)
            await self._store(conn, chain_id, address, next_nonce)

    async def peek(self, chain_id: int, address: str) -> int | None:
        async with self.engine.connect() as conn:
            value = (
                await conn.execute(
                    select(_NONCES.c.next_nonce).where(
                        _NONCES.c.chain_id == chain_id, _NONCES.c.address == address
                    )
                )
            ).scalar_one_or_none()
        return None if value is None or value < 0 else int(value)
