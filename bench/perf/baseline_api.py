"""``python -m bench.perf.baseline_api CHANGE…``: ``tierflow serve`` with changes of
docs/performance.md taken back, so :mod:`bench.perf.write_path` measures before and after side
by side on one stack:

- ``bookkeeping`` (change 8): six database transactions per hosted keyed write: the journal's
  record and the audit citation committed one after the other before the broadcast, the
  answer and the audit record one after the other after it;
- ``web3-stack`` (change 9): the gateway's senders broadcast, read nonces and wait for
  receipts through web3.py's request stack (:class:`bench.perf.baseline.Web3StackSender`);
- ``relayer-estimate`` (change 10): the relayer asks ``eth_estimateGas`` for every relay;
- ``audit-statements`` (change 23): the audit record appended in seven statements built for
  each request (the pending row read, then deleted; the head ensured, its sequence number
  moved, then read) instead of four built once;
- ``nonce-statements`` (change 25): a nonce allocated in three statements built for each
  allocation (the row ensured, read under its lock, updated) instead of one upsert;
- ``folded-record`` (change 34): the Idempotency-Key claimed in a transaction of its own
  before the write runs, and the nonce allocated in one of its own, not both in the
  transaction that records the signed transaction and its citation (four transactions per
  hosted keyed write instead of two). ``bookkeeping`` takes this back too (its six are
  these four with two more).
"""

from __future__ import annotations

import sys
from typing import Any

from backend import gateway
from backend.api import deps
from backend.gateway import port, sending
from backend.ports import TxJournal, WriteContext
from bench.perf.baseline import Web3StackSender
from ledger.sender import TransactionSender

CHANGES = (
    "bookkeeping",
    "web3-stack",
    "relayer-estimate",
    "audit-statements",
    "nonce-statements",
    "folded-record",
)


def install(changes: list[str]) -> None:
    """Take ``changes`` back in this process."""
    unknown = set(changes) - set(CHANGES)
    if unknown:
        raise SystemExit(f"unknown changes {sorted(unknown)}; known: {', '.join(CHANGES)}")
    if "bookkeeping" in changes or "folded-record" in changes:
        _folded_record_as_before()
    if "bookkeeping" in changes:

        async def record(self: WriteContext, journal: TxJournal, tx_hash: str) -> None:
            await journal.persist(journal)
            await self.cite(tx_hash)

        def no_finishing(_request: Any) -> None:
            return None

        WriteContext.record = record  # type: ignore[method-assign]
        deps._finishing = no_finishing  # type: ignore[assignment]
    if "web3-stack" in changes:
        vars(port)["TransactionSender"] = Web3StackSender  # the gateway's senders
    if "relayer-estimate" in changes:

        def relayer_sender(self: gateway.Gateway) -> Any:
            return TransactionSender(
                self.w3,
                self.relayer,
                self.nonces,
                receipt_timeout_s=self.receipt_timeout_s,
                unavailable_timeout_s=self.unavailable_s,
            )

        gateway.Gateway.relayer_sender = relayer_sender  # type: ignore[method-assign]
    if "audit-statements" in changes:
        _audit_statements_as_before()
    if "nonce-statements" in changes:
        _nonce_statements_as_before()


def _folded_record_as_before() -> None:
    """Keys claimed up front and nonces allocated in their own transactions (before change
    33): no command claims late, and the gateway records through ``WriteContext.record``."""
    import dataclasses

    from backend.services import commands

    def records_in(self: WriteContext, journal: TxJournal) -> bool:
        return False

    WriteContext.records_in = records_in  # type: ignore[method-assign]
    for name, spec in list(commands.COMMANDS.items()):
        commands.COMMANDS[name] = dataclasses.replace(spec, claims_late=False)


def _nonce_statements_as_before() -> None:
    """``backend.nonces.SqlNonceStore.allocate`` as it was at 22c4fbe (also within the
    transaction that records a signed transaction, ``backend.nonces.allocate_in``)."""
    from sqlalchemy.ext.asyncio import AsyncConnection

    from backend.nonces import SqlNonceStore

    async def allocate_in(
        conn: AsyncConnection, chain_id: int, address: str, chain_next: int, count: int = 1
    ) -> int:
        store = SqlNonceStore(None)  # type: ignore[arg-type]  # its helpers take ``conn``
        stored = await store._locked(conn, chain_id, address)
        first = max(chain_next, stored if stored is not None else 0)
        await store._store(conn, chain_id, address, first + count)
        return first

    vars(sending)["allocate_in"] = allocate_in

    async def allocate(
        self: SqlNonceStore, chain_id: int, address: str, chain_next: int, count: int = 1
    ) -> int:
        async with self.engine.begin() as conn:
            stored = await self._locked(conn, chain_id, address)
            first = max(chain_next, stored if stored is not None else 0)
            await self._store(conn, chain_id, address, first + count)
            return first

    SqlNonceStore.allocate = allocate  # type: ignore[method-assign]


def _audit_statements_as_before() -> None:
    """``backend.audit_log``'s append as it was at 63a0a73."""
    import json
    from datetime import UTC, datetime

    from sqlalchemy import select, update
    from sqlalchemy.ext.asyncio import AsyncConnection

    from backend import audit_log as log

    head_t, pending_t, log_t = log._HEAD, log._PENDING, log._LOG

    async def append_in(
        conn: AsyncConnection, entry: log.Entry, request_id: str | None = None
    ) -> int:
        hashes = list(entry.tx_hashes)
        if request_id is not None:
            pending = (
                await conn.execute(
                    select(pending_t.c.tx_hashes).where(pending_t.c.request_id == request_id)
                )
            ).scalar_one_or_none()
            if pending is not None:
                hashes += [h for h in json.loads(pending) if h not in hashes]
                await conn.execute(pending_t.delete().where(pending_t.c.request_id == request_id))
        entry = log.Entry(**{**entry.__dict__, "tx_hashes": tuple(hashes)})
        return await append(conn, entry)

    async def append(conn: AsyncConnection, entry: log.Entry) -> int:
        await log._ensure_head(conn)
        await conn.execute(update(head_t).where(head_t.c.id == 1).values(seq=head_t.c.seq + 1))
        head = (
            await conn.execute(select(head_t.c.seq, head_t.c.hash).where(head_t.c.id == 1))
        ).one()
        record: dict[str, Any] = {
            "seq": head.seq,
            "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "member": entry.member,
            "api_key_id": entry.api_key_id,
            "method": entry.method,
            "path": entry.path[:300],
            "status": entry.status,
            "code": entry.code,
            "idempotency_key": entry.idempotency_key,
            "request_sha256": entry.request_sha256,
            "tx_hashes": json.dumps(list(entry.tx_hashes)),
            "request_id": entry.request_id,
        }
        digest = log.chain_hash(head.hash, record)
        await conn.execute(log_t.insert().values(**record, prev_hash=head.hash, hash=digest))
        await conn.execute(update(head_t).where(head_t.c.id == 1).values(hash=digest))
        return int(head.seq)

    log.append_in = append_in
    log._append = append


def serve() -> None:
    """``tierflow serve`` in this process (one worker: the changes taken back live here; a
    spawned worker would import the API afresh). bench sits below the command line in the
    layers, so it runs uvicorn itself rather than through ``tierflow.cli``."""
    import uvicorn

    from backend.app import create_app
    from backend.config import ApiSettings

    settings = ApiSettings()
    uvicorn.run(
        create_app,
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level,
        access_log=False,
        log_config=None,
    )


if __name__ == "__main__":
    install(sys.argv[1:])
    serve()
