"""The mirror equals the chain: contracts' views, rebuilds, SQLite and PostgreSQL (IX-1, IX-5)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select, update

from db.engine import create_engine
from db.types import table_of
from indexer import models
from indexer.config import IndexerConfig
from ledger.bindings import MAX_AMOUNT
from tests.support.chain import Chain
from tests.support.databases import create_pg_database, drop_pg_database
from tests.support.mirror import (
    approve_pending,
    index_once,
    mirror_digest,
    multi_tier,
    reconcile_mirror,
)


async def test_multi_tier_mirror_equals_views(chain: Chain, index_config: IndexerConfig) -> None:
    p = chain.platform
    ids = await multi_tier(p)
    stats = await index_once(index_config)
    assert stats.events > 0
    report = await reconcile_mirror(index_config)
    assert report.ok, report.differences
    assert report.checked["claim"] == 4  # root, tier 2, tier 3 and the financed piece
    engine = create_engine(index_config.database_url)
    async with engine.connect() as conn:
        claims = {r.id: r for r in await conn.execute(select(table_of(models.Claim)))}
    await engine.dispose()
    assert claims[ids["tier3"]].parent_id == ids["tier2"]
    assert claims[ids["tier3"]].depth == 2
    assert claims[ids["tier3"]].holder == p.sup4.address
    assert claims[ids["tier3"]].status == "frozen"
    assert claims[ids["financed"]].holder == p.bank.address
    assert claims[ids["financed"]].status == "financed"
    assert claims[ids["root"]].status == "locked"


async def test_incremental_equals_rebuild(
    chain: Chain, index_config: IndexerConfig, tmp_path: Path
) -> None:
    """Indexing while the chain grows gives the same mirror as one pass from genesis."""
    p = chain.platform
    ids = await multi_tier(p)
    await index_once(index_config)
    await approve_pending(p, ids["pending"])
    await p.operator.transact(p.claim_ledger.functions.unfreezeClaim(ids["tier3"]))
    await index_once(index_config)
    rebuilt = f"sqlite+aiosqlite:///{tmp_path / 'rebuilt.db'}"
    await index_once(index_config, database_url=rebuilt)
    assert await mirror_digest(index_config.database_url) == await mirror_digest(rebuilt)
    assert (await reconcile_mirror(index_config)).ok


@pytest.mark.postgres
async def test_sqlite_and_postgres_mirrors_are_identical(chain: Chain, tmp_path: Path) -> None:
    await multi_tier(chain.platform)
    sqlite_url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    name = await create_pg_database()
    pg_url = f"postgresql+asyncpg://root@127.0.0.1:5432/{name}"
    try:
        base = IndexerConfig(chain.url, sqlite_url, chain.platform.deployment)
        await index_once(base)
        await index_once(base, database_url=pg_url)
        assert await mirror_digest(sqlite_url) == await mirror_digest(pg_url)
    finally:
        await drop_pg_database(name)


AMOUNTS = [MAX_AMOUNT, 2**63, 2**53 + 1, 1]


async def test_large_amounts_round_trip(chain: Chain, index_config: IndexerConfig) -> None:
    """0, 1, 2^53 + 1, 2^63 and the on-chain maximum come back exactly, on both databases."""
    p = chain.platform
    await p.operator.transact(p.claim_ledger.functions.setProgramLimit(p.core.address, MAX_AMOUNT))
    _payable, root, _due = await p.issue(p.core, p.sup1, MAX_AMOUNT)
    pieces = {}
    for amount in AMOUNTS[1:]:
        pieces[await p.split(p.sup1, root, p.sup2, amount)] = amount
    await index_once(index_config)
    engine = create_engine(index_config.database_url)
    claims = table_of(models.Claim)
    accounts = table_of(models.ObligorAccount)
    async with engine.connect() as conn:
        amounts = dict((await conn.execute(select(claims.c.id, claims.c.amount))).all())
        limit = (
            await conn.execute(
                select(accounts.c.program_limit).where(accounts.c.obligor == p.core.address)
            )
        ).scalar_one()
        # The type itself: 0 and the largest uint256 survive a write and a read.
        for value in (0, 2**256 - 1):
            await conn.execute(
                update(claims).where(claims.c.id == root).values(locked_amount=value)
            )
            back = (
                await conn.execute(select(claims.c.locked_amount).where(claims.c.id == root))
            ).scalar_one()
            assert back == value
            assert type(back) is int
        await conn.rollback()
    await engine.dispose()
    assert limit == MAX_AMOUNT
    for claim_id, amount in pieces.items():
        assert amounts[claim_id] == amount
        assert type(amounts[claim_id]) is int
    assert amounts[root] == MAX_AMOUNT - sum(pieces.values())
    assert (await reconcile_mirror(index_config)).ok


async def test_reconcile_lists_every_difference(chain: Chain, index_config: IndexerConfig) -> None:
    ids = await multi_tier(chain.platform)
    await index_once(index_config)
    engine = create_engine(index_config.database_url)
    claims = table_of(models.Claim)
    async with engine.begin() as conn:
        await conn.execute(update(claims).where(claims.c.id == ids["tier2"]).values(amount=1))
        await conn.execute(claims.delete().where(claims.c.id == ids["tier3"]))
    await engine.dispose()
    report = await reconcile_mirror(index_config)
    assert not report.ok
    found = {(d.kind, d.key, d.field) for d in report.differences}
    assert ("claim", str(ids["tier2"]), "amount") in found
    assert ("count", "claimCount", "count") in found
