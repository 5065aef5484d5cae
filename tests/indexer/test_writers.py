"""Two indexers on one database: the second exits or waits, and never writes meanwhile.

The first indexer holds the writer lock (a PostgreSQL advisory lock on its connection, an OS
file lock next to a SQLite file) for as long as it is open. While it is open and idle the
chain moves on, so a second indexer that wrote anyway would move the checkpoint; the tests
check it stays where the first left it until the first has closed. Once in process, once
through ``tierflow index`` in child processes (with and without ``--wait``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from indexer.config import IndexerConfig
from indexer.errors import WriterLockHeld
from indexer.pipeline import Indexer
from ledger.deployment import save_deployment
from tests.support.chain import Chain
from tests.support.mirror import (
    ONE_PASS,
    approve_pending,
    index_once,
    mirror_digest,
    multi_tier,
    reconcile_mirror,
    sqlite_url,
    stored_checkpoint,
)

REPO = Path(__file__).resolve().parents[2]
#: Longer than a poll of a waiting lock (indexer.lock.POLL_S is 0.5 s).
WAITING_S = 0.8


async def open_and_close(config: IndexerConfig) -> None:
    async with Indexer.open(config):
        pass


@contextlib.asynccontextmanager
async def holder(config: IndexerConfig) -> AsyncIterator[Indexer]:
    """An indexer caught up with the head and then left open (idle, holding the lock)."""
    async with Indexer.open(config) as indexer:
        await indexer.run(once=True)
        yield indexer


async def _grow(chain: Chain, pending: int) -> int:
    """More blocks with events after the holder's checkpoint; the new head."""
    p = chain.platform
    await approve_pending(p, pending)
    _payable, root, _due = await p.issue(p.core, p.sup5, 5_000)
    await p.split(p.sup5, root, p.sup1, 1_000)
    return int(await p.w3.eth.block_number)


async def test_second_indexer_exits_or_waits_and_never_writes_meanwhile(
    chain: Chain, index_config: IndexerConfig, tmp_path: Path
) -> None:
    ids = await multi_tier(chain.platform)
    config = replace(index_config, poll_interval_s=0.05)
    url = config.database_url
    async with holder(config) as first:
        held = first.checkpoint
        with pytest.raises(WriterLockHeld, match="another indexer is writing"):
            await open_and_close(config)
        head = await _grow(chain, ids["pending"])
        assert head > held.block_number
        before = await mirror_digest(url)
        second = asyncio.create_task(index_once(config, wait_for_lock=True))
        await asyncio.sleep(WAITING_S)
        assert not second.done(), "the second indexer did not wait"
        assert await stored_checkpoint(url) == held
        assert await mirror_digest(url) == before
    async with asyncio.timeout(30):
        stats = await second  # takes over once the first has closed
    assert stats.checkpoint == head
    assert stats.events > 0
    stored = await stored_checkpoint(url)
    assert stored is not None
    assert stored.block_number == head
    rebuilt = sqlite_url(tmp_path, "rebuilt")
    await index_once(config, database_url=rebuilt, **ONE_PASS)
    assert await mirror_digest(url) == await mirror_digest(rebuilt)
    assert (await reconcile_mirror(config)).ok


async def _cli(
    chain: Chain, database_url: str, deployments: Path, *flags: str
) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "TIERFLOW_DEPLOYMENTS_DIR": str(deployments),
        "TIERFLOW_DATA_DIR": str(deployments.parent / "data"),
    }
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tierflow.cli",
        "index",
        "--once",
        *flags,
        "--rpc-url",
        chain.url,
        "--database-url",
        database_url,
        "--metrics-port",
        "0",
        cwd=REPO,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


class Lines:
    """A child's stream read line by line in the background; ``seen``: ``marker`` came."""

    def __init__(self, stream: asyncio.StreamReader | None, marker: str) -> None:
        assert stream is not None
        self.lines: list[str] = []
        self.seen = asyncio.Event()
        self.task = asyncio.create_task(self._read(stream, marker))

    async def _read(self, stream: asyncio.StreamReader, marker: str) -> None:
        async for raw in stream:
            line = raw.decode(errors="replace")
            self.lines.append(line)
            if marker in line:
                self.seen.set()

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.lines).split())


async def test_cli_second_indexer_exits_with_a_message_or_waits(
    chain: Chain, index_config: IndexerConfig, tmp_path: Path
) -> None:
    deployments = tmp_path / "deployments"
    save_deployment(chain.platform.deployment, deployments)
    url = index_config.database_url
    async with holder(index_config) as first:
        held = first.checkpoint
        # Both start while the lock is held; the chain grows while they start up.
        refused = await _cli(chain, url, deployments)
        waiting = await _cli(chain, url, deployments, "--wait")
        waiting_err = Lines(waiting.stderr, "indexer.lock_wait")
        ids = await multi_tier(chain.platform)
        head = await _grow(chain, ids["pending"])
        async with asyncio.timeout(60):
            out, err = await refused.communicate()
            await waiting_err.seen.wait()
        assert refused.returncode == 2, (out, err)
        # Its output is a pipe, so the indexer logs JSON lines: one says why it stopped.
        stopped = [
            json.loads(line)
            for line in err.decode().splitlines()
            if line.startswith("{") and '"indexer.stopped"' in line
        ]
        assert len(stopped) == 1, err
        assert stopped[0]["level"] == "error"
        assert "another indexer is writing to this database" in stopped[0]["reason"]
        assert "--wait" in stopped[0]["reason"]
        await asyncio.sleep(WAITING_S)
        assert waiting.returncode is None, "the waiting indexer did not wait"
        assert await stored_checkpoint(url) == held
    async with asyncio.timeout(60):
        assert waiting.stdout is not None
        waited_out = await waiting.stdout.read()
        assert await waiting.wait() == 0, (waited_out, waiting_err.text)
        await waiting_err.task
    finished = [json.loads(line) for line in waiting_err.lines if '"indexer.finished"' in line]
    assert finished, waiting_err.text
    assert finished[-1]["checkpoint"] == head, waiting_err.text
    stored = await stored_checkpoint(url)
    assert stored is not None
    assert stored.block_number == head
    assert (await reconcile_mirror(index_config)).ok
