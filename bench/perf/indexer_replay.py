"""The indexer's CPU per event with no node: a recorded chain replayed, checkouts side by side.

``python -m bench.perf.indexer_replay --record FILE [--events 20000]`` generates the
benchmark's load on an ephemeral anvil (:func:`bench.indexer_load.generate`) and saves its
deployment, every log and every block header to ``FILE``. ``python -m
bench.perf.indexer_replay FILE --baseline DIR [--rounds 5] [--database postgresql|sqlite]``
then backfills a fresh database from that recording with this checkout and with ``DIR``'s,
alternating, each run a process of its own whose code is the checkout's (``PYTHONPATH``).
The node is a stand-in answering ``eth_getLogs`` and ``eth_getBlockByNumber`` from the
recording, parsing each answer from JSON text as a node's would be (the recording's own
objects are frozen out of the collector's way first). Without anvil on the same two cores
the indexer's own CPU per event (``time.process_time`` over ``Indexer.run``) varies much
less from run to run than in :mod:`bench.perf.indexer_cpu`; medians, with the load average,
of that CPU, of the PostgreSQL server process's serving it (``/proc``), and of the events
mirrored per second of wall time.
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
from pathlib import Path

from bench.indexer_backfill import postgres_database, sqlite_database
from bench.indexer_load import generate
from bench.perf.figures import load_average
from ledger.anvil import AnvilProcess
from ledger.jsonrpc import RpcClient
from ledger.paths import repo_root

#: Runs in the variant's checkout: only what both sides have (the Indexer's constructor and
#: start-up steps, as ``Indexer.open`` takes them, with the stand-in node).
CHILD = """
import asyncio, gc, json, os, sys, time
from db.engine import create_engine, sqlite_path
from indexer import indexes
from indexer.config import IndexerConfig
from indexer.lock import WriterLock
from indexer.models import migrate
from indexer.pipeline import Indexer
from ledger.deployment import Deployment
from ledger.logs import configure_logging

recording = json.loads(open(sys.argv[1]).read())
deployment = Deployment.from_json(recording["deployment"])
blocks = [json.dumps(b) for b in recording["blocks"]]
by_block = {}
for log in recording["logs"]:
    by_block.setdefault(int(log["blockNumber"], 16), []).append(json.dumps(log))
by_block = {n: ",".join(texts) for n, texts in by_block.items()}
head = len(blocks) - 1
del recording

class Node:
    async def call(self, method, params):
        if method == "eth_chainId":
            return hex(deployment.chain_id)
        if method == "eth_blockNumber":
            return hex(head)
        if method == "eth_getBlockByNumber":
            n = int(params[0], 16)
            return json.loads(blocks[n]) if n <= head else None
        if method == "eth_getLogs":
            start, end = int(params[0]["fromBlock"], 16), int(params[0]["toBlock"], 16)
            await asyncio.sleep(0)
            texts = [by_block[n] for n in range(start, end + 1) if n in by_block]
            return json.loads("[" + ",".join(texts) + "]")
        raise ValueError(method)

    async def batch(self, calls):
        return [await self.call(m, p) for m, p in calls]

    async def aclose(self):
        pass

async def main(database_url, out_path):
    config = IndexerConfig(rpc_url="http://replay", database_url=database_url,
                           deployment=deployment, confirmations=0)
    engine = create_engine(database_url)
    node = Node()
    conn = await engine.connect()
    try:
        lock = WriterLock(conn, sqlite_path(database_url))
        await lock.acquire(wait=False)
        await migrate(engine)
        checkpoint = await Indexer._start(conn, config, node)
        ix = Indexer(config, engine, conn, node, checkpoint)
        ix.indexes_deferred = bool(await indexes.missing(conn))
        backend = None
        if engine.dialect.name == "postgresql":
            backend = (await conn.exec_driver_sql("SELECT pg_backend_pid()")).scalar()
            await conn.commit()
        if nice:  # this process and the server's, ahead of the machine's other work
            for pid in (os.getpid(), backend):
                if pid is not None:
                    os.setpriority(os.PRIO_PROCESS, pid, nice)
        server = server_cpu(backend)
        cpu = time.process_time()
        stats = await ix.run(once=True)
        cpu = time.process_time() - cpu
        server = server_cpu(backend) - server
        await lock.release()
    finally:
        await conn.close()
        await engine.dispose()
    with open(out_path, "w") as out:
        out.write(json.dumps({"events": stats.events, "seconds": stats.seconds, "cpu": cpu,
                              "server_cpu": server}))

def server_cpu(pid):
    if pid is None:
        return 0.0
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

nice = int(sys.argv[4])
configure_logging("warning")
gc.collect()
gc.freeze()
asyncio.run(main(sys.argv[2], sys.argv[3]))
"""


async def record(path: Path, events: int) -> None:
    with AnvilProcess.ephemeral() as node:
        load = await generate(node.url, events)
        addresses = sorted(a.lower() for a in load.addresses)
        async with RpcClient(node.url, timeout_s=120.0) as rpc:
            logs = await rpc.call(
                "eth_getLogs",
                [
                    {
                        "fromBlock": hex(load.first_block),
                        "toBlock": hex(load.last_block),
                        "address": addresses,
                    }
                ],
            )
            blocks = await rpc.batch(
                [("eth_getBlockByNumber", [hex(n), False]) for n in range(load.last_block + 1)]
            )
    doc = {"deployment": load.deployment.to_json(), "logs": logs, "blocks": blocks}
    await asyncio.to_thread(path.write_text, json.dumps(doc))
    print(f"{len(logs)} logs over {load.last_block - load.first_block + 1} blocks → {path}")


def _child(
    tree: Path, recording: Path, database_url: str, out: Path, nice: int
) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree), "TIERFLOW_REPO_ROOT": str(tree)}
    command = [sys.executable, "-c", CHILD, str(recording), database_url, str(out), str(nice)]
    subprocess.run(command, env=env, check=True)
    return dict(json.loads(out.read_text()))


async def replay(
    recording: Path, trees: dict[str, Path], rounds: int, database: str, nice: int = 0
) -> None:
    made = postgres_database if database == "postgresql" else sqlite_database
    results: dict[str, list[dict[str, float]]] = {}
    print(f"load average {load_average():.2f}", flush=True)
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory) / "result.json"
        for r in range(rounds):
            for name in list(trees) if r % 2 == 0 else list(reversed(trees)):
                async with made() as database_url:
                    got = await asyncio.to_thread(
                        _child, trees[name], recording, database_url, out, nice
                    )
                results.setdefault(name, []).append(got)
                print(
                    f"round {r + 1} {name:24} {1e6 * got['cpu'] / got['events']:6.1f} µs CPU/event"
                    f" (server {1e6 * got['server_cpu'] / got['events']:4.1f})"
                    f" {got['events'] / got['seconds']:8,.0f} events/s"
                    f" ({got['events']:,.0f} events, load {load_average():.2f})",
                    flush=True,
                )
    print(f"\n{database}, medians of {rounds}:")
    for name, runs in results.items():
        cpu = [1e6 * g["cpu"] / g["events"] for g in runs]
        server = [1e6 * g["server_cpu"] / g["events"] for g in runs]
        rate = [g["events"] / g["seconds"] for g in runs]
        spread = f"{min(cpu):.1f}–{max(cpu):.1f}"
        print(
            f"  {name:24} {statistics.median(cpu):6.1f} µs CPU/event ({spread}),"
            f" server {statistics.median(server):.1f} µs,"
            f" {statistics.median(rate):,.0f} events/s ({min(rate):,.0f}–{max(rate):,.0f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path, help="the recording (written with --record)")
    parser.add_argument("--record", action="store_true", help="generate a load and record it")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--baseline", type=Path, help="another checkout, run side by side")
    parser.add_argument("--tree", action="append", help="NAME=DIR: one more checkout to run")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="run each replay and its PostgreSQL server process at this niceness (negative: "
        "ahead of the machine's other work, as root; a busy shared machine hides how the "
        "indexer's Python and the server overlap)",
    )
    args = parser.parse_args()
    if args.record:
        asyncio.run(record(args.file, args.events))
        return
    trees = {"after (this checkout)": repo_root()}
    if args.baseline:
        trees = {"before (baseline)": args.baseline.resolve(), **trees}
    for item in args.tree or []:
        name, _, directory = item.partition("=")
        trees[name] = Path(directory).resolve()
    asyncio.run(replay(args.file.resolve(), trees, args.rounds, args.database, args.nice))


if __name__ == "__main__":
    main()
