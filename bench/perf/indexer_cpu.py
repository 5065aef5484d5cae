"""The indexer's own CPU per event, side by side: this checkout against another (``--baseline``).

One ephemeral anvil gets a load (:func:`bench.indexer_load.generate`, ``--events`` logs); then,
in alternating rounds (so the machine's load falls on every variant alike), each variant
backfills it from genesis into a fresh database (SQLite and/or PostgreSQL) in a process of
its own whose code is the variant's checkout (``PYTHONPATH``). The child reports the events
mirrored, the run's wall time and the process's CPU time over the run (``time.process_time``:
the indexer's Python, its JSON-RPC client and its database driver, SQLite included; not
anvil's), and on PostgreSQL the CPU time of the server process serving the indexer's
connection (``/proc/<pg_backend_pid()>/stat``: the database must be on this machine). On a
busy machine the wall rates swing with the load; the two CPU figures per event do not, and a
backfill's wall time is bounded below by the larger of them (the writes of one batch overlap
the next batch's Python). Medians over the rounds, with the load average before and after.

``python -m bench.perf.indexer_cpu --baseline DIR`` (``DIR``: say ``git worktree add DIR
HEAD~1``); ``--profile DIR`` also records each variant's first PostgreSQL run with py-spy into
``DIR/<variant>.txt`` (collapsed stacks, for a flame graph tool or ``grep``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.indexer_backfill import fetch_only, indexer_config, postgres_database, sqlite_database
from bench.indexer_load import generate
from bench.perf.figures import load_average
from ledger.anvil import AnvilProcess
from ledger.paths import repo_root

#: Runs in the variant's checkout: only APIs both sides have (Indexer.open, IndexerConfig).
CHILD = """
import asyncio, json, os, sys, time
from indexer.config import IndexerConfig
from indexer.pipeline import Indexer
from ledger.deployment import Deployment
from ledger.logs import configure_logging

async def main(url, database_url, deployment_path, out_path):
    deployment = Deployment.from_json(json.loads(open(deployment_path).read()))
    config = IndexerConfig(rpc_url=url, database_url=database_url, deployment=deployment,
                           confirmations=0)
    async with Indexer.open(config) as ix:
        backend = None
        if ix.engine.dialect.name == "postgresql":
            backend = (await ix._conn.exec_driver_sql("SELECT pg_backend_pid()")).scalar()
            await ix._conn.commit()
        server = server_cpu(backend)
        cpu = time.process_time()
        stats = await ix.run(once=True)
        cpu = time.process_time() - cpu
        server = server_cpu(backend) - server
    with open(out_path, "w") as out:
        out.write(json.dumps({"events": stats.events, "seconds": stats.seconds, "cpu": cpu,
                              "server_cpu": server}))

def server_cpu(pid):
    if pid is None:
        return 0.0
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

configure_logging("warning")
asyncio.run(main(*sys.argv[1:5]))
"""


def _child(
    tree: Path, url: str, database_url: str, deployment: Path, svg: Path | None
) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree), "TIERFLOW_REPO_ROOT": str(tree)}
    result = deployment.with_name("result.json")
    command = [sys.executable, "-c", CHILD, url, database_url, str(deployment), str(result)]
    if svg is not None:
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        subprocess.run(
            [spy, "record", "-r", "250", "-f", "raw", "-o", str(svg), "--", *command],
            env=env,
            check=True,
            capture_output=True,
        )
    else:
        subprocess.run(command, env=env, check=True)
    return dict(json.loads(result.read_text()))


async def _run(tree: Path, url: str, db: str, deployment: Path, svg: Path | None) -> dict[str, Any]:
    database = postgres_database if db == "postgresql" else sqlite_database
    async with database() as database_url:
        return await asyncio.to_thread(_child, tree, url, database_url, deployment, svg)


async def bench(url: str, args: argparse.Namespace, trees: dict[str, Path]) -> None:
    load = await generate(url, args.events)
    config = indexer_config(url, "sqlite+aiosqlite:///:memory:", load)
    databases = ["sqlite", "postgresql"] if not args.skip_sqlite else ["postgresql"]
    if args.skip_postgres:
        databases = ["sqlite"]
    with tempfile.TemporaryDirectory() as directory:
        deployment = Path(directory) / "deployment.json"
        deployment.write_text(json.dumps(load.deployment.to_json()))
        results: dict[tuple[str, str], list[dict[str, Any]]] = {}
        fetch: list[float] = []
        print(
            f"{load.logs} logs over {load.last_block - load.first_block + 1} blocks; "
            f"load average {load_average():.2f}",
            flush=True,
        )
        for r in range(args.rounds):
            count, seconds = await fetch_only(url, load, config)
            fetch.append(count / seconds)
            for db in databases:
                names = list(trees) if r % 2 == 0 else list(reversed(trees))
                for name in names:
                    svg = None
                    if args.profile and r == 0 and db == "postgresql":
                        svg = Path(args.profile) / f"{name.split()[0].strip('()')}.txt"
                    out = await _run(trees[name], url, db, deployment, svg)
                    if out["events"] != load.logs:
                        raise SystemExit(f"{name} mirrored {out['events']} of {load.logs}")
                    results.setdefault((db, name), []).append(out)
                    print(
                        f"round {r + 1} {db:10} {name:24} {out['events'] / out['seconds']:8,.0f}"
                        f" events/s {1e6 * out['cpu'] / out['events']:6.1f} µs CPU/event "
                        f"(PostgreSQL's {1e6 * out['server_cpu'] / out['events']:5.1f}) "
                        f"(load {load_average():.2f})",
                        flush=True,
                    )
    ceiling = statistics.median(fetch)
    print(f"\nfetch-only {ceiling:,.0f} logs/s (median of {len(fetch)}); medians:")
    for (db, name), outs in results.items():
        rate = statistics.median(o["events"] / o["seconds"] for o in outs)
        cpu = statistics.median(1e6 * o["cpu"] / o["events"] for o in outs)
        server = statistics.median(1e6 * o["server_cpu"] / o["events"] for o in outs)
        print(
            f"  {db:10} {name:24} {rate:8,.0f} events/s ({rate / ceiling:.2f} of fetch-only)"
            f" {cpu:6.1f} µs CPU/event, the database server's {server:5.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", help="another checkout of the project, run side by side")
    parser.add_argument("--tree", action="append", help="NAME=DIR: one more checkout to run")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--profile", help="directory for py-spy flame graphs of round 1 (PG)")
    args = parser.parse_args()
    trees = {"after (this checkout)": repo_root()}
    if args.baseline:
        trees = {"before (baseline)": Path(args.baseline).resolve(), **trees}
    for extra in args.tree or ():
        name, _, directory = extra.partition("=")
        trees[name] = Path(directory).resolve()
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    with AnvilProcess.ephemeral() as node:
        asyncio.run(bench(node.url, args, trees))


if __name__ == "__main__":
    main()
