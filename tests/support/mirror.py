"""Steps the indexer tests share: index a chain into a database, digest it, reconcile it;
seeded scenario histories (one anvil each) and ways of indexing them in many small steps."""

from __future__ import annotations

import contextlib
import itertools
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.cast import Platform
from bench.indexer_load import LoadResult, scenario
from db.engine import create_engine
from indexer.config import IndexerConfig
from indexer.pipeline import Indexer, RunStats, mirrored_contracts
from indexer.reconcile import ReconciliationReport, reconcile
from indexer.store import CheckpointState, digest, read_checkpoint
from ledger.anvil import AnvilProcess, rpc_call
from ledger.deployment import Deployment
from ledger.jsonrpc import RpcClient
from tests.support.contracts import apply, approve, finance
from tests.support.databases import PG_SERVER, create_pg_database, drop_pg_database
from tests.support.faulty_node import FaultyNode


async def index_once(config: IndexerConfig, **overrides: Any) -> RunStats:
    async with Indexer.open(replace(config, **overrides) if overrides else config) as indexer:
        return await indexer.run(once=True)


async def mirror_digest(database_url: str) -> str:
    engine = create_engine(database_url)
    try:
        return await digest(engine)
    finally:
        await engine.dispose()


async def outbox_and_events(
    database_url: str,
) -> tuple[list[tuple[Any, ...]], set[tuple[Any, ...]]]:
    """The webhook outbox (``(seq, kind, event, block, log index, block hash, reverted,
    reverts)`` in seq order) and the mirrored events' ``(block, log index, block hash)``."""
    from sqlalchemy import select

    from db.types import table_of
    from indexer import models
    from indexer.handlers import HANDLERS

    o, e = table_of(models.OutboxEntry), table_of(models.Event)
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            entries = [
                tuple(r)
                for r in await conn.execute(
                    select(
                        o.c.seq,
                        o.c.kind,
                        o.c.event,
                        o.c.block_number,
                        o.c.log_index,
                        o.c.block_hash,
                        o.c.reverted,
                        o.c.reverts,
                    ).order_by(o.c.seq)
                )
            ]
            # Logs without a handler (ERC-721/3525 compatibility …) are never pushed.
            events = {
                (r.block_number, r.log_index, r.block_hash)
                for r in await conn.execute(
                    select(e.c.block_number, e.c.log_index, e.c.block_hash, e.c.contract, e.c.event)
                )
                if f"{r.contract}:{r.event}" in HANDLERS
            }
    finally:
        await engine.dispose()
    return entries, events


async def stored_checkpoint(database_url: str) -> CheckpointState | None:
    """The checkpoint as committed in the database (None before the first run)."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            return await read_checkpoint(conn)
    finally:
        await engine.dispose()


async def reconcile_mirror(config: IndexerConfig) -> ReconciliationReport:
    engine = create_engine(config.database_url)
    try:
        async with RpcClient(config.rpc_url) as rpc:
            return await reconcile(engine, rpc)
    finally:
        await engine.dispose()


async def multi_tier(p: Platform) -> dict[str, int]:
    """Issue, split down three tiers, transfer, finance, freeze: most handlers, quickly."""
    payable, root, _due = await p.issue(p.core, p.sup1, 1_000_000, agent=p.agent)
    tier2 = await p.split(p.sup1, root, p.sup2, 400_000)
    tier3 = await p.split(p.sup2, tier2, p.sup3, 150_000)
    await p.sup3.transact(p.claim_ledger.functions.transferClaim(tier3, p.sup4.address, b"\0" * 32))
    financed = await finance(p, p.sup2, tier2, p.bank, 100_000)
    pending = await apply(p, p.sup1, root, p.bank2, 50_000)
    rejected = await apply(p, p.sup1, root, p.bank, 20_000)
    await p.bank.transact(p.desk.functions.rejectFinancing(rejected, b"\1" * 32))
    await p.operator.transact(p.claim_ledger.functions.freezeClaim(tier3, b"\2" * 32))
    return {
        "payable": payable,
        "root": root,
        "tier2": tier2,
        "tier3": tier3,
        "financed": financed,
        "pending": pending,
    }


async def approve_pending(p: Platform, financing_id: int) -> None:
    await approve(p, p.bank2, financing_id)


# -- seeded scenario histories (bench.indexer_load.scenario) ----------------------------------

#: Many small batches: ranges of 1 to 3 blocks.
TINY: dict[str, Any] = {"initial_range": 1, "max_range": 3, "target_logs": 50}
#: The whole history in one range (whatever the defaults are): a rebuild in one pass.
ONE_PASS: dict[str, Any] = {
    "initial_range": 10**6,
    "max_range": 10**6,
    "target_logs": 10**6,
    "batch_events": 10**6,
}


@dataclass
class History:
    """A fresh anvil holding one seeded scenario; read-only for the tests that share it."""

    node: AnvilProcess
    result: LoadResult

    @property
    def url(self) -> str:
        return self.node.url

    @property
    def deployment(self) -> Deployment:
        return self.result.deployment

    @property
    def head(self) -> int:
        return self.result.last_block

    def config(self, database_url: str, **overrides: Any) -> IndexerConfig:
        base = IndexerConfig(
            rpc_url=self.url, database_url=database_url, deployment=self.deployment
        )
        return replace(base, **overrides) if overrides else base


@contextlib.asynccontextmanager
async def scenario_history(seed: int, operations: int = 60) -> AsyncIterator[History]:
    with AnvilProcess.ephemeral() as node:
        result = await scenario(node.url, seed=seed, operations=operations)
        assert result.last_block == int(rpc_call(node.url, "eth_blockNumber"), 16)
        yield History(node, result)


class Histories:
    """Scenario chains by seed, made on first use and kept until :meth:`close`."""

    def __init__(self) -> None:
        self._stack = contextlib.AsyncExitStack()
        self._made: dict[int, History] = {}
        self._digests: dict[int, str] = {}

    async def get(self, seed: int) -> History:
        if seed not in self._made:
            self._made[seed] = await self._stack.enter_async_context(scenario_history(seed))
        return self._made[seed]

    async def clean_digest(self, seed: int, directory: Path) -> str:
        """The digest of an uninterrupted one-pass mirror of ``seed``'s history (SQLite)."""
        if seed not in self._digests:
            history = await self.get(seed)
            url = sqlite_url(directory, f"clean-{seed}")
            await index_once(history.config(url, **ONE_PASS))
            self._digests[seed] = await mirror_digest(url)
        return self._digests[seed]

    async def close(self) -> None:
        await self._stack.aclose()


def sqlite_url(directory: Path, name: str) -> str:
    return f"sqlite+aiosqlite:///{directory / name}.db"


@contextlib.asynccontextmanager
async def pg_database() -> AsyncIterator[str]:
    """A new PostgreSQL database (its async URL), dropped afterwards."""
    name = await create_pg_database()
    try:
        base = PG_SERVER.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        yield f"{base}/{name}"
    finally:
        await drop_pg_database(name)


async def logs_up_to(url: str, deployment: Deployment, head: int) -> list[int]:
    """``counts[n]``: how many logs the mirrored contracts emitted in blocks 0..n."""
    addresses = [record.address for record in mirrored_contracts(deployment).values()]
    async with RpcClient(url) as rpc:
        logs = await rpc.call(
            "eth_getLogs", [{"fromBlock": "0x0", "toBlock": hex(head), "address": addresses}]
        )
    per_block = [0] * (head + 1)
    for entry in logs:
        per_block[int(entry["blockNumber"], 16)] += 1
    return list(itertools.accumulate(per_block))


async def index_growing(
    config: IndexerConfig, proxy: FaultyNode, head: int, rng: random.Random, max_step: int = 6
) -> RunStats:
    """Index as if the chain grew a few blocks at a time, with one indexer following it.

    ``proxy`` (in front of a node at ``head``) hides the top blocks and reveals 1 to
    ``max_step`` more before each catch-up; after each one the checkpoint must be exactly the
    head the node showed, never past it.
    """
    shown = config.deployment.start_block
    proxy.set_head_lag(head - shown)
    async with Indexer.open(replace(config, rpc_url=proxy.url)) as indexer:
        while True:
            await indexer.run(once=True)
            assert indexer.checkpoint.block_number == shown
            if shown == head:
                break
            shown = min(head, shown + rng.randint(1, max_step))
            proxy.set_head_lag(head - shown)
        proxy.set_head_lag(0)
        return indexer.stats
