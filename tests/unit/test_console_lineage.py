"""The console's tree service on a SQLite mirror filled as ``bench.console_route`` fills it:
every piece carries the transaction that created it and its flags, holders come with their
names, and the API's visibility holds (an outsider: not found; a holder that is not a party
of the payable: not the whole tree)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.auth import Caller
from backend.console import Console
from backend.errors import Forbidden, NotFound
from backend.services import lineage
from bench import console_route
from bench import console_samples as samples
from db.engine import sessions
from indexer import models as m
from ledger.roles import Role


@pytest.fixture
async def filled(tmp_path: Path) -> AsyncIterator[tuple[AsyncEngine, int]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'lineage.db'}"
    async with console_route.database(url) as engine:
        pid = await console_route.fill(engine, 300, "bushy")
        yield engine, pid


def _walk(root: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    todo = [root]
    while todo:
        node = todo.pop()
        out.append(node)
        todo += node["children"]
    return out


async def test_every_piece_with_its_transaction_and_flags(filled: tuple[AsyncEngine, int]) -> None:
    engine, pid = filled
    async with sessions(engine)() as session:
        tree, people = await lineage.lineage(session, console_route.AUDITOR, pid)
    nodes = _walk(tree["root"])
    assert len(nodes) == 300
    for node in nodes:
        assert node["tx_hash"] == samples.tx_hash(int(node["id"]))
        assert node["financed"] == (node["status"] == "financed")
        assert node["frozen"] == (node["status"] == "frozen")
        assert people[str(node["holder"])]["name"] == samples.MEMBERS[str(node["holder"])]["name"]
    html = Console().tree_page(tree, members=people)
    assert f"/console/tx/{samples.tx_hash(1)}" in html


async def test_the_apis_visibility(filled: tuple[AsyncEngine, int]) -> None:
    engine, pid = filled
    outsider = Caller(samples.address(77), frozenset({Role.SUPPLIER}), "active", "k1")
    holder = Caller(samples.SUPPLIERS[3], frozenset({Role.SUPPLIER}), "active", "k2")
    supplier = Caller(samples.SUPPLIERS[0], frozenset({Role.SUPPLIER}), "active", "k3")
    async with sessions(engine)() as session:
        with pytest.raises(NotFound):
            await lineage.lineage(session, outsider, pid)
        with pytest.raises(Forbidden):
            await lineage.lineage(session, holder, pid)
        tree, _ = await lineage.lineage(session, supplier, pid)
    assert tree["node_count"] == 300


async def test_the_cache_keeps_a_tree_per_checkpoint(filled: tuple[AsyncEngine, int]) -> None:
    engine, pid = filled
    cache = lineage.LineageCache()
    outsider = Caller(samples.address(77), frozenset({Role.SUPPLIER}), "active", "k1")
    async with sessions(engine)() as session:
        first, _ = await lineage.lineage(session, console_route.AUDITOR, pid, cache)
        again, _ = await lineage.lineage(session, console_route.AUDITOR, pid, cache)
        assert again is first
        assert cache.hits == 1
        # the right to the tree is checked on every read, cached or not
        with pytest.raises(NotFound):
            await lineage.lineage(session, outsider, pid, cache)
    # the mirror moves on (a piece changes hands in a new block): a new key, a fresh read
    async with engine.begin() as conn:
        await conn.execute(update(m.Claim).where(m.Claim.id == 2).values(holder=samples.CORE))
        await conn.execute(
            update(m.Checkpoint).values(
                block_number=m.Checkpoint.block_number + 1, block_hash=samples.tx_hash(5)
            )
        )
    async with sessions(engine)() as session:
        moved, _ = await lineage.lineage(session, console_route.AUDITOR, pid, cache)
    assert moved is not first
    assert {n["id"]: n["holder"] for n in _walk(moved["root"])}[2] == samples.CORE
    assert cache.hits == 1
