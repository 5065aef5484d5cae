"""Steps the indexer tests share: index a chain into a database, digest it, reconcile it."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from indexer.config import IndexerConfig
from indexer.db import create_engine
from indexer.pipeline import Indexer, RunStats
from indexer.reconcile import ReconciliationReport, reconcile
from indexer.rpc import RpcClient
from indexer.store import digest
from tests.contracts.helpers import apply, approve, finance
from tests.support.platform import Platform


async def index_once(config: IndexerConfig, **overrides: Any) -> RunStats:
    async with Indexer.open(replace(config, **overrides) if overrides else config) as indexer:
        return await indexer.run(once=True)


async def mirror_digest(database_url: str) -> str:
    engine = create_engine(database_url)
    try:
        return await digest(engine)
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
    await p.sup3.transact(p.ledger.functions.transferClaim(tier3, p.sup4.address, b"\0" * 32))
    financed = await finance(p, p.sup2, tier2, p.bank, 100_000)
    pending = await apply(p, p.sup1, root, p.bank2, 50_000)
    rejected = await apply(p, p.sup1, root, p.bank, 20_000)
    await p.bank.transact(p.desk.functions.rejectFinancing(rejected, b"\1" * 32))
    await p.operator.transact(p.ledger.functions.freezeClaim(tier3, b"\2" * 32))
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
