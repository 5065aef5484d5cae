"""API workers on several hosts sign for one member: the SQL nonce store keeps them apart.

Three OS processes send 30 transactions each for the same account at once, allocating
nonces from :class:`backend.nonces.SqlNonceStore` on one database (SQLite and PostgreSQL):
90 consecutive nonces, every transaction mined, and the node never refused a nonce as taken.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
from eth_account import Account

from backend.models import migrate
from db.engine import create_pooled_engine as create_engine
from ledger.node import Web3Client
from ledger.paths import package_root
from tests.support.chain import Deployed
from tests.support.databases import create_pg_database, drop_pg_database
from tests.support.processes import reaped

pytestmark = pytest.mark.usefixtures("chain_snapshot")

WORKER = Path(__file__).parents[1] / "ledger" / "nonce_worker.py"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> object:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'nonces.db'}"
        name = None
    else:
        name = await create_pg_database()
        url = f"postgresql+asyncpg://root@127.0.0.1:5432/{name}"
    engine = create_engine(url)
    await migrate(engine)
    await engine.dispose()
    try:
        yield url
    finally:
        if name is not None:
            await drop_pg_database(name)


async def test_three_processes_share_sql_nonces_without_collisions(
    w3: Web3Client, anvil_url: str, dev_keys: list[str], thrower: Deployed, store_url: str
) -> None:
    key = dev_keys[11]
    address = Account.from_key(key).address
    contract = w3.eth.contract(address=w3.to_checksum_address(thrower.address), abi=thrower.abi)
    data = contract.functions.bump()._encode_transaction_data()
    start = await w3.eth.get_transaction_count(address)
    before = await contract.functions.counter().call()
    env = {**os.environ, "PYTHONPATH": str(package_root())}
    args = [anvil_url, key, f"sql:{store_url}", "30", thrower.address, data]
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
            out, err = await asyncio.wait_for(proc.communicate(), 180)
            assert proc.returncode == 0, err.decode()[-3000:]
            report = json.loads(out.decode().strip().splitlines()[-1])
            nonces += report["nonces"]
            conflicts += report["conflicts"]
    assert sorted(nonces) == list(range(start, start + 90))
    assert conflicts == 0, "the SQL store handed out a nonce twice"
    assert await contract.functions.counter().call() == before + 90
