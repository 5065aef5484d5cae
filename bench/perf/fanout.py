"""The webhook fan-out's cost: mirrored entries queued for members' endpoints, no HTTP.

``python -m bench.perf.fanout [--members 20] [--pieces 100] [--rounds 7] [--baseline DIR]``

A SQLite mirror holds, for each of ``--members`` suppliers, a payable and ``--pieces`` pieces
split off its root (a ``ClaimSplit`` event and outbox entry each, as the indexer writes
them), and each supplier has one endpoint for every event type. A round empties the
deliveries and the cursor and times :func:`backend.webhooks.fanout.fan_out` until it has
consumed every entry: each member is asked which of the batch's events it may see and which
objects it may read. The figure is the median round. ``--baseline DIR`` runs the same in the
checkout ``DIR`` (say ``git worktree add DIR HEAD~1``), alternating round by round, and
prints both with the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.perf.figures import load_average

DUE = 1_900_000_000
ZERO_HASH = "0x" + "00" * 32


def _address(i: int) -> str:
    return "0x" + f"{i:040x}"


def endpoint_row(endpoint_id: str, owner: str) -> dict[str, Any]:
    """A ``webhook_endpoints`` row: ``owner``'s active endpoint for every event type, there
    before any entry was mirrored."""
    return {
        "id": endpoint_id,
        "owner": owner,
        "url": "https://receiver.test/hook",
        "event_types": '["*"]',
        "description": None,
        "secret": "sealed",
        "previous_secret": None,
        "previous_until": None,
        "status": "active",
        "failing_reason": None,
        "failing_since": None,
        "from_seq": 0,
        "created_at": 0,
    }


async def _seed(path: Path, members: int, pieces: int) -> Any:
    from sqlalchemy import insert

    from backend.models import WebhookEndpoint, migrate
    from db.engine import create_engine
    from indexer import models
    from indexer.outbox import OUTBOX_COLUMNS, outbox_row
    from indexer.rows import EVENT_COLUMNS, claim_row, event_row, payable_row
    from ledger.codec import DecodedEvent

    engine = create_engine(f"sqlite:///{path}", lock_wait_s=5.0)
    await migrate(engine)

    class Rows:  # what outbox_row reads: the mirrored object
        def __init__(self) -> None:
            self.claims: dict[tuple[Any, ...], dict[str, Any]] = {}

        async def get(self, table: str, key: tuple[Any, ...]) -> dict[str, Any] | None:
            return self.claims.get(key) if table == "claims" else None

    rows = Rows()
    payables: list[dict[str, Any]] = []
    claims: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    endpoints: list[dict[str, Any]] = []
    claim_id = 0
    for p in range(members):
        supplier = _address(1_000 + p)
        claim_id += 1
        root = claim_id
        payables.append(
            payable_row(p + 1, _address(1), supplier, 10**9, DUE, 1, None, root, False, 1)
        )
        claims.append(claim_row(root, p + 1, None, 0, supplier, 10**9, DUE, None, 1))
        for k in range(pieces):
            claim_id += 1
            holder = _address(5_000 + k)
            piece = claim_row(claim_id, p + 1, root, 1, holder, 1, DUE, None, 2)
            claims.append(piece)
            rows.claims[(claim_id,)] = piece
            args = {
                "parentId": root,
                "claimId": claim_id,
                "payableId": p + 1,
                "from": supplier,
                "to": holder,
                "value": 1,
                "depth": 1,
                "invoiceId": ZERO_HASH,
            }
            block = 10 + len(events)
            ev = DecodedEvent(
                block_number=block,
                block_hash="0x" + f"{block:064x}",
                tx_hash="0x" + f"{block + 10**6:064x}",
                tx_index=0,
                log_index=0,
                address=_address(2),
                contract="ClaimLedger",
                name="ClaimSplit",
                args=args,
                args_json=json.dumps(args, separators=(",", ":")),
                key="ClaimLedger:ClaimSplit",
            )
            row = event_row(ev, 1_700_000_000)
            events.append(dict(zip(EVENT_COLUMNS, row, strict=True)))
            entry = await outbox_row(rows, ev, row)  # type: ignore[arg-type]
            entries.append(dict(zip(OUTBOX_COLUMNS, entry, strict=True)))
        endpoints.append(endpoint_row(f"we_{p}", supplier))
    async with engine.begin() as conn:
        await conn.execute(insert(models.Payable), payables)
        await conn.execute(insert(models.Claim), claims)
        await conn.execute(insert(models.Event), events)
        await conn.execute(insert(models.OutboxEntry), entries)
        await conn.execute(insert(WebhookEndpoint), endpoints)
    return engine


async def _worker(members: int, pieces: int) -> None:
    """Seed a mirror, then time a round each time a line arrives on stdin (one per round)."""
    from sqlalchemy import delete

    from backend.models import WebhookCursor, WebhookDelivery
    from backend.webhooks.fanout import fan_out

    with tempfile.TemporaryDirectory(prefix="tierflow-fanout-") as tmp:
        engine = await _seed(Path(tmp) / "mirror.db", members, pieces)
        print("ready", flush=True)
        for _ in sys.stdin:
            async with engine.begin() as conn:
                await conn.execute(delete(WebhookDelivery))
                await conn.execute(delete(WebhookCursor))
            started = time.perf_counter()
            consumed = 0
            while found := await fan_out(engine):
                consumed += found
            print(json.dumps({"seconds": time.perf_counter() - started, "entries": consumed}))
            sys.stdout.flush()
        await engine.dispose()


def _start(checkout: Path, members: int, pieces: int) -> subprocess.Popen[str]:
    """A worker on ``checkout``'s code (this file run there: an older checkout may not have it)."""
    env = {**os.environ, "PYTHONPATH": str(checkout), "TIERFLOW_REPO_ROOT": str(checkout)}
    argv = ["fanout", "--worker", "--members", str(members), "--pieces", str(pieces)]
    run = (
        f"import runpy, sys; sys.argv = {argv!r}; "
        f"runpy.run_path({str(__file__)!r}, run_name='__main__')"
    )
    command = [sys.executable, "-c", run]
    process = subprocess.Popen(
        command, cwd=checkout, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        raise RuntimeError(f"the fan-out worker in {checkout} did not start")
    return process


def _round(process: subprocess.Popen[str]) -> dict[str, Any]:
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.write("\n")
    process.stdin.flush()
    answer: dict[str, Any] = json.loads(process.stdout.readline())
    return answer


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--members", type=int, default=20)
    ap.add_argument("--pieces", type=int, default=100, help="pieces (entries) per member")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--baseline", type=Path, help="another checkout, run alternately")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        asyncio.run(_worker(args.members, args.pieces))
        return
    here = Path(__file__).resolve().parents[2]
    checkouts = {"this checkout": here}
    if args.baseline is not None:
        checkouts = {f"baseline ({args.baseline})": args.baseline.resolve(), **checkouts}
    processes = {name: _start(path, args.members, args.pieces) for name, path in checkouts.items()}
    times: dict[str, list[float]] = {name: [] for name in checkouts}
    load_before = load_average()
    try:
        for _ in range(args.rounds):
            for name, process in processes.items():
                answer = _round(process)
                if answer["entries"] != args.members * args.pieces:
                    raise RuntimeError(f"{name} consumed {answer['entries']} entries")
                times[name].append(answer["seconds"])
    finally:
        for process in processes.values():
            if process.stdin is not None:
                process.stdin.close()
            process.wait(timeout=30)
    load_after = load_average()
    entries = args.members * args.pieces
    print(
        f"fan-out of {entries:,} entries to {args.members} member endpoints "
        f"({args.pieces} visible to each), {args.rounds} rounds, "
        f"load {load_before:.2f} → {load_after:.2f}"
    )
    for name, seconds in times.items():
        median = statistics.median(seconds)
        spread = f"{min(seconds) * 1000:,.0f}–{max(seconds) * 1000:,.0f} ms"
        rate = entries / median
        print(f"  {name}: median {median * 1000:,.0f} ms ({spread}), {rate:,.0f} entries/s")


if __name__ == "__main__":
    main()
