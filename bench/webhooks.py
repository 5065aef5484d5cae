"""Webhook delivery latency: from a block to the receiver, at 200 events/s.

``python -m bench.webhooks [--rate 200] [--seconds 20] [--block-time 1] [--record]``

The platform runs as processes (:class:`bench.stack.Stack`: anvil, ``tierflow index``,
``tierflow serve``, ``tierflow webhooks``) on SQLite. The operator registers one webhook for
``ClaimSplit`` through the API, pointing at a receiver in this process (aiohttp on
127.0.0.1). Then anvil mines a block every ``--block-time`` seconds (as a QBFT network does)
and splits, signed in advance, are sent at ``--rate`` per second (open loop) for
``--seconds``. Each delivery's latency is its arrival at the receiver minus the moment its
block was first seen by this process (``eth_blockNumber`` polled every 5 ms): the time the
indexer, the outbox, the dispatcher and HTTP add to the chain's own. Every event must arrive;
the figures are medians of what one run measured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web
from eth_account import Account
from eth_utils.address import to_checksum_address

from bench.stack import Stack
from ledger.anvil import dev_private_keys, free_port
from ledger.bindings import ZERO_HASH, Suite
from ledger.deployment import DAY, load_deployment
from ledger.node import close_web3, make_web3
from ledger.roles import Role, roles_to_mask
from ledger.sender import TransactionSender

RESULTS = Path(__file__).resolve().parent / "results" / "webhooks.json"


class Receiver:
    def __init__(self) -> None:
        self.port = free_port()
        self.arrivals: dict[str, tuple[int, float]] = {}  # event id → (block, arrival)
        self.duplicates = 0
        self.expected = -1
        self.all_in = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        at = time.time()
        event = json.loads(body)
        if event["type"] == "ClaimSplit":
            if event["id"] in self.arrivals:
                self.duplicates += 1
            else:
                self.arrivals[event["id"]] = (event["data"]["event"]["block_number"], at)
                if len(self.arrivals) == self.expected:
                    self.all_in.set()
        return web.Response(text="ok")


async def _watch_blocks(url: str, seen: dict[int, float], stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        last = -1
        while not stop.is_set():
            r = await http.post(
                url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}
            )
            number = int(r.json()["result"], 16)
            now = time.time()
            for n in range(last + 1, number + 1):
                seen.setdefault(n, now)
            last = max(last, number)
            await asyncio.sleep(0.005)


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(rate: int, seconds: int, block_time: int) -> dict[str, Any]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", receiver.port).start()
    with tempfile.TemporaryDirectory(prefix="bench-webhooks-") as tmp:
        async with Stack.start(Path(tmp), webhooks=True) as stack:
            try:
                return await _measure(stack, receiver, rate, seconds, block_time)
            finally:
                await runner.cleanup()


async def _measure(
    stack: Stack, receiver: Receiver, rate: int, seconds: int, block_time: int
) -> dict[str, Any]:
    deployment = load_deployment(31337, stack.data_dir / "deployments")
    assert deployment is not None
    w3 = make_web3(stack.rpc_url)
    try:
        keys = dev_private_keys(count=4)
        operator = TransactionSender(w3, Account.from_key(keys[0]))
        core, sup1, sup2 = (Account.from_key(k) for k in keys[1:4])
        suite = Suite(w3, deployment)
        kyc = int((await w3.eth.get_block("latest"))["timestamp"]) + 3650 * DAY
        for acct, role in (
            (core, Role.CORE_ENTERPRISE),
            (sup1, Role.SUPPLIER),
            (sup2, Role.SUPPLIER),
        ):
            await operator.transact(
                suite.members.functions.registerMember(acct.address, roles_to_mask([role]), kyc)
            )
        await operator.transact(suite.claim_ledger.functions.setProgramLimit(core.address, 10**15))
        s_core, s_sup1 = TransactionSender(w3, core), TransactionSender(w3, sup1)
        now = int((await w3.eth.get_block("latest"))["timestamp"])
        invoice_id, doc = b"\x01" * 32, b"\x02" * 32
        total = rate * seconds
        face = 10 * total + 1_000
        await s_sup1.transact(
            suite.invoices.functions.registerInvoice(invoice_id, core.address, face, now - 60, doc)
        )
        await s_core.transact(suite.invoices.functions.confirmInvoice(invoice_id))
        await s_core.transact(
            suite.claim_ledger.functions.issuePayable(
                sup1.address,
                face,
                now + 90 * DAY,
                [invoice_id],
                to_checksum_address("0x" + "00" * 20),
            )
        )
        root = int(await suite.claim_ledger.functions.claimCount().call())
        async with stack.client(stack.operator_key) as op:
            r = await op.post(
                "/v1/webhooks",
                json={
                    "url": f"http://127.0.0.1:{receiver.port}/hook",
                    "event_types": ["ClaimSplit"],
                },
            )
            r.raise_for_status()
        # Splits signed in advance, so sending costs one RPC each.
        nonce = await w3.eth.get_transaction_count(sup1.address, "pending")
        chain_id = int(await w3.eth.chain_id)
        data = suite.claim_ledger.functions.split(
            root, sup2.address, 10, ZERO_HASH
        )._encode_transaction_data()
        raw = [
            Account.sign_transaction(
                {
                    "to": suite.claim_ledger.address,
                    "data": data,
                    "gas": 200_000,
                    "maxFeePerGas": 100 * 10**9,
                    "maxPriorityFeePerGas": 10**9,
                    "nonce": nonce + i,
                    "chainId": chain_id,
                    "type": 2,
                },
                sup1.key,
            ).raw_transaction.to_0x_hex()
            for i in range(total)
        ]
        rpc = {"jsonrpc": "2.0", "id": 1}
        async with httpx.AsyncClient(timeout=10) as http:
            await http.post(
                stack.rpc_url, json={**rpc, "method": "evm_setAutomine", "params": [False]}
            )
            await http.post(
                stack.rpc_url,
                json={**rpc, "method": "evm_setIntervalMining", "params": [block_time]},
            )
            seen: dict[int, float] = {}
            stop = asyncio.Event()
            watcher = asyncio.create_task(_watch_blocks(stack.rpc_url, seen, stop))
            started = time.monotonic()
            # Open loop in nonce order: every 20 ms, the transactions due by then go out as one
            # JSON-RPC batch (a slow answer makes the next batch bigger, not later).
            sent = 0
            while sent < total:
                due = min(total, int((time.monotonic() - started) * rate) + 1)
                if due > sent:
                    batch = [
                        {**rpc, "id": i, "method": "eth_sendRawTransaction", "params": [raw[i]]}
                        for i in range(sent, due)
                    ]
                    r = await http.post(stack.rpc_url, json=batch)
                    failed = [x for x in r.json() if "error" in x]
                    assert not failed, failed[:3]
                    sent = due
                await asyncio.sleep(0.02)
            sent_s = time.monotonic() - started
            receiver.expected = total
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(receiver.all_in.wait(), 180)
            stop.set()
            await watcher
    finally:
        await close_web3(w3)
    latencies = [at - seen[block] for block, at in receiver.arrivals.values() if block in seen]
    # Where the time goes: block seen → queued (indexer, outbox, fan-out) → sent (dispatcher).
    import sqlite3

    db = sqlite3.connect(stack.data_dir / "tierflow.db")
    queued, sending = [], []
    for event_id, created, delivered in db.execute(
        "SELECT event_id, created_at, delivered_at FROM webhook_deliveries "
        "WHERE event_type = 'ClaimSplit' AND delivered_at IS NOT NULL"
    ):
        block = receiver.arrivals.get(event_id, (None, 0.0))[0]
        if block in seen:
            queued.append(created / 1000 - seen[block])
            sending.append((delivered - created) / 1000)
    db.close()
    arrivals = sorted(at for _, at in receiver.arrivals.values())
    return {
        "rate_offered": rate,
        "seconds": seconds,
        "block_time_s": block_time,
        "events": total,
        "delivered": len(receiver.arrivals),
        "duplicates": receiver.duplicates,
        "send_seconds": round(sent_s, 2),
        "delivery_rate": round(len(arrivals) / (arrivals[-1] - arrivals[0]), 1)
        if len(arrivals) > 1
        else None,
        "latency_s": {
            "p50": round(statistics.median(latencies), 3),
            "p90": round(_quantile(latencies, 0.90), 3),
            "p99": round(_quantile(latencies, 0.99), 3),
            "max": round(max(latencies), 3),
        },
        "queued_s_p50": round(statistics.median(queued), 3) if queued else None,
        "queued_to_sent_s_p50": round(statistics.median(sending), 3) if sending else None,
        "machine": {"platform": platform.platform(), "cpus": __import__("os").cpu_count()},
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--block-time", type=int, default=1)
    parser.add_argument("--record", action="store_true", help=f"write {RESULTS}")
    args = parser.parse_args()
    result = asyncio.run(run(args.rate, args.seconds, args.block_time))
    print(json.dumps(result, indent=2))
    if args.record:
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
