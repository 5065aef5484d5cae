"""Idempotent writes (AP-1): the same key and body give the same response and one effect.

A mutating request carries ``Idempotency-Key``. :meth:`Idempotency.run` claims the key for the
calling member with an insert (the primary key ``(member, key)`` makes concurrent duplicates
collide in the database, whichever worker they reach):

- the key is new: the request runs with a :class:`~backend.chain.TxJournal` current, so every
  transaction it signs is recorded before broadcast; its response (success, or the chain's
  refusal) is stored with the record;
- the key is done: the stored response is returned as it was (``Idempotent-Replayed: true``);
- the key is in use by a live request (its lease is fresh): the duplicate waits for it, up to
  :data:`WAIT_S`, then gets 409 ``idempotency_in_progress``;
- the key's lease ran out (the worker died between broadcasting and recording the result):
  this request takes it over and runs again with the recorded transactions, which are found
  on chain (or re-sent as the same bytes) instead of being sent a second time;
- the same key with another body (method, path or bytes): 422 ``idempotency_key_reused``.

Failures that say nothing about the request (the node unreachable, a timeout, a bug) store no
response: the record stays pending with its transactions, to be resumed by a retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.chain import CURRENT_JOURNAL, RecordedTx, TxJournal
from backend.errors import ApiError, Conflict, Invalid, from_revert
from backend.models import IdempotencyRecord
from db.engine import now_ms, now_s
from db.types import table_of
from ledger.errors import ContractRevert

_RECORDS = table_of(IdempotencyRecord)
#: How long a claimed key is taken to belong to a live request without renewal.
LEASE_MS = 30_000
#: How long a duplicate waits for the first request to finish.
WAIT_S = 30.0
MAX_KEY_LENGTH = 200


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: Any
    replayed: bool


def request_digest(method: str, path: str, body: bytes) -> str:
    h = hashlib.sha256()
    h.update(method.upper().encode() + b"\n" + path.encode() + b"\n")
    h.update(body)
    return h.hexdigest()


class Idempotency:
    """Claims keys, resumes abandoned ones, stores and replays responses."""

    def __init__(self, engine: AsyncEngine, lease_ms: int = LEASE_MS, wait_s: float = WAIT_S):
        self.engine = engine
        self.lease_ms = lease_ms
        self.wait_s = wait_s

    async def run(
        self,
        member: str,
        key: str,
        method: str,
        path: str,
        body: bytes,
        handler: Callable[[], Awaitable[tuple[int, Any]]],
    ) -> StoredResponse:
        """Run ``handler`` (returning ``(status, JSON body)``) at most once for this key."""
        if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
            raise Invalid(
                f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters",
                code="idempotency_key_invalid",
            )
        digest = request_digest(method, path, body)
        claimed = await self._claim(member, key, method, path, digest)
        if isinstance(claimed, StoredResponse):
            return claimed
        recorded, state = claimed
        journal = TxJournal(recorded, lambda j: self._persist(member, key, j), state)
        token = CURRENT_JOURNAL.set(journal)
        renewing = asyncio.create_task(self._renew(member, key))
        try:
            try:
                status, response = await handler()
            except ContractRevert as revert:
                # The chain's refusal is this request's answer: a retry gets it again.
                error = from_revert(revert)
                await self._finish(member, key, error.status, error.problem(path))
                raise error from revert
            except ApiError as exc:
                if exc.status >= 500:
                    raise
                await self._finish(member, key, exc.status, exc.problem(path))
                raise
            await self._finish(member, key, status, response)
            return StoredResponse(status, response, replayed=False)
        except BaseException:
            # Nothing final to store: leave the record pending (with what it signed) and let
            # a retry take it over at once.
            with contextlib.suppress(Exception):
                await self._release(member, key)
            raise
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
            CURRENT_JOURNAL.reset(token)

    # -- the record ----------------------------------------------------------------------------

    async def _claim(
        self, member: str, key: str, method: str, path: str, digest: str
    ) -> tuple[list[RecordedTx], dict[str, Any]] | StoredResponse:
        deadline = asyncio.get_running_loop().time() + self.wait_s
        while True:
            try:
                async with self.engine.begin() as conn:
                    await conn.execute(
                        _RECORDS.insert().values(
                            member=member,
                            key=key,
                            request_sha256=digest,
                            method=method,
                            path=path,
                            state="pending",
                            locked_until_ms=now_ms() + self.lease_ms,
                            transactions="[]",
                            memo="{}",
                            created_at=now_s(),
                        )
                    )
                return [], {}
            except IntegrityError:
                pass
            async with self.engine.begin() as conn:
                row = (
                    await conn.execute(
                        select(_RECORDS).where(_RECORDS.c.member == member, _RECORDS.c.key == key)
                    )
                ).first()
                if row is None:
                    continue  # released meanwhile: claim it again
                if row.request_sha256 != digest:
                    raise Invalid(
                        "this Idempotency-Key was used for another request",
                        code="idempotency_key_reused",
                    )
                if row.state == "done":
                    return StoredResponse(row.status_code, json.loads(row.response), True)
                if row.locked_until_ms < now_ms():
                    taken = await conn.execute(
                        update(_RECORDS)
                        .where(
                            _RECORDS.c.member == member,
                            _RECORDS.c.key == key,
                            _RECORDS.c.locked_until_ms == row.locked_until_ms,
                        )
                        .values(locked_until_ms=now_ms() + self.lease_ms)
                    )
                    if taken.rowcount == 1:
                        txs = [RecordedTx(**t) for t in json.loads(row.transactions)]
                        return txs, json.loads(row.memo)
                    continue
            if asyncio.get_running_loop().time() >= deadline:
                raise Conflict(
                    "a request with this Idempotency-Key is still in progress; retry later",
                    code="idempotency_in_progress",
                )
            await asyncio.sleep(0.1)

    async def _persist(self, member: str, key: str, journal: TxJournal) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(_RECORDS)
                .where(_RECORDS.c.member == member, _RECORDS.c.key == key)
                .values(
                    transactions=json.dumps([t.as_json() for t in journal.recorded]),
                    memo=json.dumps(journal.state),
                )
            )

    async def _finish(self, member: str, key: str, status: int, body: Any) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(_RECORDS)
                .where(_RECORDS.c.member == member, _RECORDS.c.key == key)
                .values(state="done", status_code=status, response=json.dumps(body))
            )

    async def _release(self, member: str, key: str) -> None:
        """Give the key up without a response: a retry may take it over (or start afresh)."""
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    select(_RECORDS.c.transactions, _RECORDS.c.state, _RECORDS.c.memo).where(
                        _RECORDS.c.member == member, _RECORDS.c.key == key
                    )
                )
            ).first()
            if row is None or row.state == "done":
                return
            if json.loads(row.transactions) or json.loads(row.memo):
                await conn.execute(
                    update(_RECORDS)
                    .where(_RECORDS.c.member == member, _RECORDS.c.key == key)
                    .values(locked_until_ms=0)
                )
            else:
                await conn.execute(
                    _RECORDS.delete().where(_RECORDS.c.member == member, _RECORDS.c.key == key)
                )

    async def _renew(self, member: str, key: str) -> None:
        while True:
            await asyncio.sleep(self.lease_ms / 3000)
            with contextlib.suppress(Exception):
                async with self.engine.begin() as conn:
                    await conn.execute(
                        update(_RECORDS)
                        .where(
                            _RECORDS.c.member == member,
                            _RECORDS.c.key == key,
                            _RECORDS.c.state == "pending",
                        )
                        .values(locked_until_ms=now_ms() + self.lease_ms)
                    )
