"""Idempotent writes (AP-1): the same key and body give the same response and one effect.

A mutating request carries ``Idempotency-Key``. :meth:`Idempotency.run` claims the key for the
calling member with an insert (the primary key ``(member, key)`` makes concurrent duplicates
collide in the database, whichever worker they reach). A command that writes nothing before
its first signed transaction is recorded (``CommandSpec.claims_late``: the chain writes)
claims it late: the key is looked up, and the record inserted by the write's first database
transaction, the one that records its first signed transaction (with the nonce and the audit
citation, before the broadcast) or stores its answer; a duplicate's insert collides there
(:class:`KeyTaken`), rolls back with everything of its transaction, and the duplicate goes on
as below:

- the key is new: the record keeps the write as a command (operation, JSON arguments, the
  caller's key; :mod:`backend.services.commands`) and it runs with a
  :class:`~backend.ports.TxJournal` in its :class:`~backend.ports.WriteContext`, so every
  transaction it signs is recorded before broadcast; its response (success, or the chain's
  refusal) is stored with the record;
- the key is done: the stored response is returned as it was (``Idempotent-Replayed: true``);
- the key is in use by a live request (its lease is fresh): the duplicate waits for it, up to
  :data:`WAIT_S`, then gets 409 ``idempotency_in_progress``;
- the key's lease ran out (the worker died between broadcasting and recording the result):
  this request takes it over and runs the *stored* command again with the recorded
  transactions, which are found on chain (or re-sent as the same bytes) instead of being sent
  a second time;
- the same key with another body (method, path or bytes): 422 ``idempotency_key_reused``;
- the write stopped for a ``self`` member's signature (:class:`~backend.ports.SignatureRequired`):
  the record is ``awaiting`` with the ``202`` answer (the intent), which a retry gets again;
  :meth:`Idempotency.resume` takes it up once the signature is in and runs the stored command
  to its end, so the original key then replays the write's own answer.

Failures that say nothing about the request (the node unreachable, a timeout, a bug) store no
response: the record stays pending with its transactions, to be resumed by a retry.

Reorganisations (AP-4). Before a stored success is replayed, ``canonical`` checks that the
transactions it recorded are still mined on the canonical chain. If one is not, the record is
reopened and the stored command runs again with those transactions (re-sent as the same
bytes where their nonce is still free): the answer is the new outcome, marked
``rerun="reorganised"``; a refusal of the rerun answers 409 ``write_reorganised`` carrying
the refusal. Either way it is stored as the key's answer. A rerun that fails on the way (the
node down, a receipt timeout: 503) stays a rerun for the retry that takes it over (the memo
keeps the mark). A recorded transaction sent again behind nonces the reorganisation emptied
(the account's earlier transactions, whose writes may never be retried) would never be mined,
so every retry would answer 503: the gateway fills such gaps before it waits
(``TransactionSender.fill_gap_below``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from backend.errors import Conflict, Invalid
from backend.models import IdempotencyRecord, IntentRow
from backend.ports import RERUN_MEMO, RecordedTx, SignatureRequired, TxJournal
from backend.services.commands import Command, spec
from db.engine import now_ms, now_s
from db.types import table_of

_RECORDS = table_of(IdempotencyRecord)
_INTENTS = table_of(IntentRow)
#: A refused write's intents that were signed and never relayed, closed with its answer.
_CLOSE_UNRELAYED = (
    update(_INTENTS)
    .where(
        _INTENTS.c.member == bindparam("p_member"),
        _INTENTS.c.idempotency_key == bindparam("p_key"),
        _INTENTS.c.status == "signed",
    )
    .values(status="failed")
)


def _record_update(**values: Any) -> Any:
    """``UPDATE`` of the record ``(:p_member, :p_key)`` setting ``values`` (bound parameters
    where a value is ``bindparam``)."""
    return (
        update(_RECORDS)
        .where(_RECORDS.c.member == bindparam("p_member"), _RECORDS.c.key == bindparam("p_key"))
        .values(**values)
    )


#: The statements every keyed write runs, built once (a statement built per request costs more
#: in SQLAlchemy than it runs: its construction, each value's coercion, its cache key).
_CLAIM = _RECORDS.insert()
_LOOKUP = select(_RECORDS).where(
    _RECORDS.c.member == bindparam("p_member"), _RECORDS.c.key == bindparam("p_key")
)
_PERSIST = _record_update(transactions=bindparam("p_transactions"), memo=bindparam("p_memo"))
_FINISH = _record_update(
    state="done", status_code=bindparam("p_status"), response=bindparam("p_response")
)
_AWAIT_SIGNATURE = _record_update(
    state="awaiting", status_code=202, response=bindparam("p_response"), locked_until_ms=0
)
#: A ``self`` member's write taken up again once its signature came (or a lapsed lease taken
#: over): only if the record is still in the state, and under the lease, it was read in.
_TAKE_UP = _record_update(state="pending", locked_until_ms=bindparam("p_until")).where(
    _RECORDS.c.state == bindparam("p_state"),
    _RECORDS.c.locked_until_ms == bindparam("p_locked"),
)
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
    #: Hashes of the transactions the write recorded (a replay's audit record cites them).
    tx_hashes: tuple[str, ...] = ()
    #: Why a stored answer was not replayed but the write run again ("reorganised").
    rerun: str | None = None


def request_digest(method: str, path: str, body: bytes) -> str:
    h = hashlib.sha256()
    h.update(method.upper().encode() + b"\n" + path.encode() + b"\n")
    h.update(body)
    return h.hexdigest()


@dataclass(frozen=True)
class Claimed:
    """A key this request now holds: the command to run (the stored one when it resumes a
    write whose worker died) and what that write had recorded."""

    command: Command
    caller_key_id: str
    recorded: list[RecordedTx]
    memo: dict[str, Any]
    rerun: str | None = None
    #: The record's columns when the key is claimed late (no record yet: it is inserted by
    #: the write's first transaction, see :meth:`Idempotency.run`); ``None`` once it exists.
    claim: dict[str, Any] | None = None


class KeyTaken(Exception):
    """A key claimed late was claimed first by another request (the record's insert collided):
    the transaction that would have claimed it rolled back, nothing of this run is durable or
    was broadcast, and the request answers as that request's duplicate."""


@dataclass
class _Hold:
    """The key as one run holds it: ``claim`` is the record's columns while it is still to be
    inserted (claimed late), ``None`` once the record is this run's."""

    member: str
    key: str
    claim: dict[str, Any] | None
    lease_ms: int = LEASE_MS
    #: The run is over: its lease is no longer renewed (said before the renewal is cancelled,
    #: in case a cancellation is lost on the way, as Python 3.11's ``wait_for`` can lose one).
    over: bool = False

    @property
    def inserted(self) -> bool:
        return self.claim is None

    def row(self, journal: TxJournal | None, **values: Any) -> dict[str, Any]:
        """The record to insert: the claim with the journal so far and ``values``."""
        assert self.claim is not None
        row = {**self.claim, "locked_until_ms": now_ms() + self.lease_ms, "created_at": now_s()}
        if journal is not None:
            row["transactions"] = _transactions_json(journal)
            row["memo"] = json.dumps(journal.state)
        row.update(values)
        return row


#: Runs the claimed command with its journal: ``(status, JSON body)``.
Handler = Callable[[Claimed, TxJournal], Awaitable[tuple[int, Any]]]
#: The stored answer for a refusal (``None``: not an answer, e.g. a dependency was down).
Refusal = Callable[[BaseException], tuple[int, Any] | None]
#: Are these transactions all still mined on the canonical chain?
Canonical = Callable[[list[str]], Awaitable[bool]]
#: Statements to run in a transaction of the record's (on its connection).
Statements = Callable[[AsyncConnection], Awaitable[None]]


@dataclass(frozen=True)
class Finishing:
    """What the transaction storing a write's answer also carries (the request's audit
    record): ``within(conn, status, body)`` runs in it, ``committed()`` once it committed."""

    within: Callable[[AsyncConnection, int, Any], Awaitable[None]]
    committed: Callable[[], None]


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
        request: tuple[str, str, bytes],
        command: Command,
        caller_key_id: str,
        handler: Handler,
        refusal: Refusal,
        canonical: Canonical | None = None,
        finishing: Finishing | None = None,
        claim_late: bool | None = None,
    ) -> StoredResponse:
        """Run ``command`` through ``handler`` at most once for this key; ``request`` is
        ``(method, path, body)``, ``refusal`` makes a refusal the request's stored answer,
        ``canonical`` checks a stored success's transactions before it is replayed,
        ``finishing`` rides in the transaction that stores the handler's own answer (a success
        or a 202 awaiting a signature).

        ``claim_late`` (default: the command's
        :attr:`~backend.services.commands.CommandSpec.claims_late`): the command writes
        nothing, in the database or on chain, before its first transaction is recorded or its
        answer stored. Its key is then looked up
        rather than claimed up front, and the record inserted by the write's first
        transaction: the one that records its first signed transaction with its nonce and
        citation, or the one that stores its answer (a refusal, a 202). A duplicate racing it
        runs as far as that insert, which collides (:class:`KeyTaken`): rolled back, nothing
        of it durable or sent, it then waits for the first request's answer as any duplicate.
        One transaction fewer per write, whose lock (SQLite: the database's) is not taken."""
        if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
            raise Invalid(
                f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters",
                code="idempotency_key_invalid",
            )
        method, path, body = request
        digest = request_digest(method, path, body)
        if claim_late is None:
            claim_late = spec(command.operation).claims_late
        while True:
            claimed = await self._claim(
                member, key, method, path, digest, command, caller_key_id, claim_late
            )
            if isinstance(claimed, StoredResponse):
                if claimed.status >= 400 or not claimed.tx_hashes or canonical is None:
                    return claimed
                if await canonical(list(claimed.tx_hashes)):
                    return claimed
                reopened = await self._reopen(member, key)
                if reopened is None:
                    # another request reopened it meanwhile: wait for its outcome like a
                    # duplicate
                    continue
                claimed = reopened
            try:
                return await self._run_claimed(
                    member, key, claimed, handler, refusal, path, finishing
                )
            except KeyTaken:
                continue  # a duplicate's insert came first: answer as its duplicate

    async def resume(
        self,
        member: str,
        key: str,
        handler: Handler,
        refusal: Refusal,
        path: str,
        finishing: Finishing | None = None,
        first: Statements | None = None,
    ) -> StoredResponse:
        """Run the write stored under an ``awaiting`` key to its end (its signature came), or
        answer what the key holds (done, or still awaiting). ``first`` runs in the
        transaction that takes the key up (the signature kept with its intent), before it."""
        deadline = asyncio.get_running_loop().time() + self.wait_s
        while True:
            async with self.engine.begin() as conn:
                if first is not None:
                    await first(conn)
                row = (await conn.execute(_LOOKUP, {"p_member": member, "p_key": key})).first()
                if row is None:
                    raise Conflict("no write waits under this key", code="intent_not_found")
                if row.state == "done":
                    hashes = tuple(t["hash"] for t in json.loads(row.transactions))
                    return StoredResponse(row.status_code, json.loads(row.response), True, hashes)
                if row.state == "awaiting" or row.locked_until_ms < now_ms():
                    taken = await conn.execute(
                        _TAKE_UP,
                        {
                            "p_member": member,
                            "p_key": key,
                            "p_state": row.state,
                            "p_locked": row.locked_until_ms,
                            "p_until": now_ms() + self.lease_ms,
                        },
                    )
                    if taken.rowcount == 1:
                        claimed = _stored_claim(row)
                        break
                    continue
            if asyncio.get_running_loop().time() >= deadline:
                raise Conflict(
                    "a request with this Idempotency-Key is still in progress; retry later",
                    code="idempotency_in_progress",
                )
            await asyncio.sleep(0.1)
        return await self._run_claimed(member, key, claimed, handler, refusal, path, finishing)

    async def finish(self, member: str, key: str, status: int, body: Any) -> None:
        """Store ``body`` as the final answer of a key (an intent that expired unsigned)."""
        await self._finish(_Hold(member, key, None, self.lease_ms), status, body)

    async def _run_claimed(
        self,
        member: str,
        key: str,
        claimed: Claimed,
        handler: Handler,
        refusal: Refusal,
        path: str,
        finishing: Finishing | None = None,
    ) -> StoredResponse:
        stored_refusal = refusal if claimed.rerun is None else _reorganised(refusal, path)
        hold = _Hold(member, key, claimed.claim, self.lease_ms)

        async def persist(journal: TxJournal) -> None:
            async with self.engine.begin() as conn:
                await persist_in(conn, journal)

        async def persist_in(conn: AsyncConnection, journal: TxJournal) -> None:
            await self._persist(conn, hold, journal)

        journal = TxJournal(claimed.recorded, persist, claimed.memo, persist_in=persist_in)
        renewing = asyncio.create_task(self._renew(hold))
        try:
            try:
                status, response = await handler(claimed, journal)
            except SignatureRequired as waiting:
                await self._await_signature(hold, waiting.answer, finishing, journal)
                return StoredResponse(202, waiting.answer, replayed=False)
            except KeyTaken:
                raise
            except Exception as exc:
                # The chain's refusal (or the service's) is this request's answer: a retry
                # gets it again. Anything else says nothing about the request.
                answer = stored_refusal(exc)
                if answer is None:
                    raise
                if not journal.recorded:
                    # Refused before anything of it left (a whole transfer of a piece that
                    # changed while its intent waited for the signature): an intent of it
                    # signed meanwhile will never be relayed. Closed ``failed`` with the
                    # answer (after the answer's own statements), not left ``signed``.
                    journal.at_answer.append(
                        functools.partial(_close_unrelayed, member=member, key=key)
                    )
                await self._finish(hold, *answer, journal=journal)
                if claimed.rerun is None:
                    raise
                hashes = tuple(t.hash for t in journal.recorded)
                return StoredResponse(*answer, False, hashes, claimed.rerun)
            await self._finish(hold, status, response, finishing, journal)
            hashes = tuple(t.hash for t in journal.recorded)
            return StoredResponse(status, response, False, hashes, claimed.rerun)
        except KeyTaken:
            raise  # the key is another request's: nothing of ours to release
        except BaseException:
            # Nothing final to store: leave the record pending (with what it signed) and let
            # a retry take it over at once. A key claimed late and never inserted has no
            # record of ours (nothing was recorded, nothing broadcast).
            if hold.inserted:
                with contextlib.suppress(Exception):
                    await self._release(member, key)
            raise
        finally:
            hold.over = True
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing

    # -- the record ----------------------------------------------------------------------------

    async def _claim(
        self,
        member: str,
        key: str,
        method: str,
        path: str,
        digest: str,
        command: Command,
        caller_key_id: str,
        late: bool = False,
    ) -> Claimed | StoredResponse:
        deadline = asyncio.get_running_loop().time() + self.wait_s
        claim = {
            "member": member,
            "key": key,
            "request_sha256": digest,
            "method": method,
            "path": path,
            "operation": command.operation,
            "arguments": json.dumps(command.args),
            "caller_key_id": caller_key_id,
            "state": "pending",
            "transactions": "[]",
            "memo": "{}",
        }
        while True:
            if late:
                # A read (no transaction of SQLite's, no lock): a new key's record is inserted
                # by the write's first transaction; a key in use is handled as below.
                async with self.engine.connect() as conn:
                    found = await conn.execute(_LOOKUP, {"p_member": member, "p_key": key})
                    if found.first() is None:
                        return Claimed(command, caller_key_id, [], {}, claim=claim)
            else:
                try:
                    async with self.engine.begin() as conn:
                        await conn.execute(
                            _CLAIM,
                            {
                                **claim,
                                "locked_until_ms": now_ms() + self.lease_ms,
                                "created_at": now_s(),
                            },
                        )
                    return Claimed(command, caller_key_id, [], {})
                except IntegrityError:
                    pass
            async with self.engine.begin() as conn:
                row = (await conn.execute(_LOOKUP, {"p_member": member, "p_key": key})).first()
                if row is None:
                    continue  # released meanwhile: claim it again (or look it up)
                if row.request_sha256 != digest:
                    raise Invalid(
                        "this Idempotency-Key was used for another request",
                        code="idempotency_key_reused",
                    )
                if row.state == "done":
                    hashes = tuple(t["hash"] for t in json.loads(row.transactions))
                    return StoredResponse(row.status_code, json.loads(row.response), True, hashes)
                if row.state == "awaiting":  # a self member's signature is still to come
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
                        # Resume the write as it was stored, from storage alone (a rerun
                        # after a reorganisation stays one: its memo says so).
                        return _stored_claim(row)
                    continue
            if asyncio.get_running_loop().time() >= deadline:
                raise Conflict(
                    "a request with this Idempotency-Key is still in progress; retry later",
                    code="idempotency_in_progress",
                )
            await asyncio.sleep(0.1)

    async def _reopen(self, member: str, key: str) -> Claimed | None:
        """Take a done record back (its write was reorganised away) to run it again."""
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    select(_RECORDS).where(_RECORDS.c.member == member, _RECORDS.c.key == key)
                )
            ).first()
            if row is None or row.state != "done":
                return None
            # The rerun is marked in the memo, so a retry that takes the record over after
            # this rerun failed (node trouble, a receipt timeout) still runs it as a rerun.
            memo = {**json.loads(row.memo), RERUN_MEMO: "reorganised"}
            taken = await conn.execute(
                update(_RECORDS)
                .where(
                    _RECORDS.c.member == member,
                    _RECORDS.c.key == key,
                    _RECORDS.c.state == "done",
                )
                .values(
                    state="pending",
                    status_code=None,
                    response=None,
                    memo=json.dumps(memo),
                    locked_until_ms=now_ms() + self.lease_ms,
                )
            )
            if taken.rowcount != 1:
                return None
            return Claimed(
                Command(row.operation, json.loads(row.arguments)),
                row.caller_key_id,
                [RecordedTx.from_json(t) for t in json.loads(row.transactions)],
                memo,
                rerun="reorganised",
            )

    @staticmethod
    async def _insert(conn: AsyncConnection, hold: _Hold, row: dict[str, Any]) -> None:
        """The record of a key claimed late, inserted by this run's first transaction; a
        collision is another request's claim (:class:`KeyTaken`: the caller's transaction
        rolls back)."""
        try:
            await conn.execute(_CLAIM, row)
        except IntegrityError as exc:
            raise KeyTaken(f"{hold.member}/{hold.key}") from exc
        # Inserted in the caller's transaction: if it does not commit, the run fails with it
        # (and its release finds no record).
        hold.claim = None

    @classmethod
    async def _persist(cls, conn: AsyncConnection, hold: _Hold, journal: TxJournal) -> None:
        if not hold.inserted:
            await cls._insert(conn, hold, hold.row(journal))
            return
        await conn.execute(
            _PERSIST,
            {
                "p_member": hold.member,
                "p_key": hold.key,
                "p_transactions": _transactions_json(journal),
                "p_memo": json.dumps(journal.state),
            },
        )

    async def _await_signature(
        self,
        hold: _Hold,
        body: Any,
        finishing: Finishing | None = None,
        journal: TxJournal | None = None,
    ) -> None:
        async with self.engine.begin() as conn:
            for statements in journal.at_answer if journal is not None else ():
                await statements(conn)
            if hold.inserted:
                await conn.execute(
                    _AWAIT_SIGNATURE,
                    {"p_member": hold.member, "p_key": hold.key, "p_response": json.dumps(body)},
                )
            else:
                row = hold.row(journal, state="awaiting", status_code=202, locked_until_ms=0)
                await self._insert(conn, hold, {**row, "response": json.dumps(body)})
            if finishing is not None:
                await finishing.within(conn, 202, body)
        if finishing is not None:
            finishing.committed()

    async def _finish(
        self,
        hold: _Hold,
        status: int,
        body: Any,
        finishing: Finishing | None = None,
        journal: TxJournal | None = None,
    ) -> None:
        """Store the key's answer (with the journal's statements to run at the answer, and
        ``finishing``), in one transaction; a key claimed late and not inserted yet (nothing
        was recorded: a refusal, or a write that sent nothing) is inserted done."""
        async with self.engine.begin() as conn:
            for statements in journal.at_answer if journal is not None else ():
                await statements(conn)
            if hold.inserted:
                await conn.execute(
                    _FINISH,
                    {
                        "p_member": hold.member,
                        "p_key": hold.key,
                        "p_status": status,
                        "p_response": json.dumps(body),
                    },
                )
            else:
                row = hold.row(journal, state="done", status_code=status)
                await self._insert(conn, hold, {**row, "response": json.dumps(body)})
            if finishing is not None:
                await finishing.within(conn, status, body)
        if finishing is not None:
            finishing.committed()

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

    async def _renew(self, hold: _Hold) -> None:
        member, key = hold.member, hold.key
        while not hold.over:
            await asyncio.sleep(self.lease_ms / 3000)
            if hold.over:
                return
            if not hold.inserted:
                continue  # no record of this run's yet
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


def _transactions_json(journal: TxJournal) -> str:
    return json.dumps([t.as_json() for t in journal.recorded])


def _stored_claim(row: Any) -> Claimed:
    """The write stored in ``row``, to run again from storage alone."""
    memo = json.loads(row.memo)
    return Claimed(
        Command(row.operation, json.loads(row.arguments)),
        row.caller_key_id,
        [RecordedTx.from_json(t) for t in json.loads(row.transactions)],
        memo,
        rerun=memo.get(RERUN_MEMO),
    )


def _reorganised(refusal: Refusal, path: str) -> Refusal:
    """A rerun's refusal as 409 ``write_reorganised`` (the refusal itself inside)."""

    def answer(exc: BaseException) -> tuple[int, Any] | None:
        refused = refusal(exc)
        if refused is None:
            return None
        return 409, {
            "type": "https://tierflow.dev/problems/write-reorganised",
            "title": "Conflict",
            "status": 409,
            "code": "write_reorganised",
            "detail": "a reorganisation removed this write from the chain, and running it "
            "again was refused",
            "instance": path,
            **({"request_id": rid} if (rid := refused[1].get("request_id")) else {}),
            "refusal": refused[1],
        }

    return answer


async def _close_unrelayed(conn: AsyncConnection, member: str, key: str) -> None:
    await conn.execute(_CLOSE_UNRELAYED, {"p_member": member, "p_key": key})
