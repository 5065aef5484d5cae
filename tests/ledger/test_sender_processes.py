"""Several OS processes signing for one account share a FileNonceStore: no collisions."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
from eth_account import Account

from ledger.node import Web3Client
from ledger.paths import package_root
from tests.support.chain import Deployed
from tests.support.processes import reaped

pytestmark = pytest.mark.usefixtures("chain_snapshot")

WORKER = Path(__file__).with_name("nonce_worker.py")


async def test_three_processes_thirty_each_no_collisions(
    w3: Web3Client, anvil_url: str, dev_keys: list[str], thrower: Deployed, tmp_path: Path
) -> None:
    key = dev_keys[10]
    address = Account.from_key(key).address
    contract = w3.eth.contract(address=w3.to_checksum_address(thrower.address), abi=thrower.abi)
    data = contract.functions.bump()._encode_transaction_data()
    start = await w3.eth.get_transaction_count(address)
    env = {**os.environ, "PYTHONPATH": str(package_root())}
    args = [anvil_url, key, str(tmp_path / "nonces"), "30", thrower.address, data]
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(WORKER),
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        for _ in range(3)
    ]
    nonces: list[int] = []
    conflicts = 0
    async with reaped(procs):
        for proc in procs:
            out, err = await asyncio.wait_for(proc.communicate(), 120)
            assert proc.returncode == 0, err.decode()
            report = json.loads(out.decode().strip().splitlines()[-1])
            nonces += report["nonces"]
            conflicts += report["conflicts"]

    assert sorted(nonces) == list(range(start, start + 90))
    assert conflicts == 0, "the file store handed out a nonce twice"
    assert await contract.functions.counter().call() == 90
    assert await w3.eth.get_transaction_count(address) == start + 90
