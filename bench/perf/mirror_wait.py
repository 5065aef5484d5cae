"""How long a write waits for the mirror after the indexer commits its block: the API's
:class:`~backend.gateway.mirror_watch.MirrorWatch` woken by PostgreSQL ``NOTIFY`` against the
same watch polling (the SQLite way), on one PostgreSQL database, side by side.

A waiter asks for block ``n + 1``; the checkpoint is then moved there in a transaction with
:func:`indexer.store.advance`, as the indexer commits a batch; the figure is the time from the
commit to the waiter's return. ``python -m bench.perf.mirror_wait [--rounds 200]``
(needs the PostgreSQL server of tests/support/databases.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
import uuid
from typing import Any

import asyncpg

from backend.gateway.mirror_watch import MirrorWatch
from bench.perf.figures import load_average, quantile
from db.engine import create_engine
from indexer import store
from indexer.models import migrate
from indexer.store import Header

PG_SERVER = os.environ.get("TIERFLOW_TEST_POSTGRES", "postgresql://root@127.0.0.1:5432/test")


def _header(number: int) -> Header:
    return Header(number, f"0x{number:064x}", f"0x{number - 1:064x}", number)


async def measure(rounds: int) -> dict[str, Any]:
    name = f"tierflow_b_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_SERVER)
    await admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_SERVER.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    engine = create_engine(f"{base}/{name}")
    out: dict[str, Any] = {"rounds": rounds, "load_before": load_average()}
    try:
        await migrate(engine)
        async with engine.begin() as conn:
            state = await store.create_checkpoint(conn, 31337, {}, _header(1))
        watches = {
            "notify": MirrorWatch(engine, listen=True),
            "poll": MirrorWatch(engine, listen=False),
        }
        latencies: dict[str, list[float]] = {k: [] for k in watches}
        block = 1
        for _ in range(rounds):
            for label, watch in random.sample(list(watches.items()), 2):
                block += 1
                waiter = asyncio.ensure_future(watch.wait(block, 30))
                # Let the waiter settle (a write's receipt arrives before the indexer's batch).
                await asyncio.sleep(random.uniform(0.0, 0.05))
                new = store.next_checkpoint(state, _header(block), state.journaled_from, 64)
                async with engine.begin() as conn:
                    state = await store.advance(conn, state, new, [_header(block)])
                committed = time.perf_counter()
                assert await waiter
                latencies[label].append(time.perf_counter() - committed)
        for watch in watches.values():
            await watch.close()
        for label, values in latencies.items():
            out[label] = {
                "p50_ms": round(quantile(values, 0.5) * 1000, 2),
                "p99_ms": round(quantile(values, 0.99) * 1000, 2),
                "mean_ms": round(sum(values) / len(values) * 1000, 2),
            }
    finally:
        await engine.dispose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    out["load_after"] = load_average()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.rounds)), indent=2))


if __name__ == "__main__":
    main()
