"""Nonce stores: allocation rule, release, reset, file persistence and corruption."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.errors import NonceError
from ledger.nonces import FileNonceStore, MemoryNonceStore, NonceStore

ADDR = "0x000000000000000000000000000000000000dEaD"


@pytest.fixture(params=["memory", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> NonceStore:
    return MemoryNonceStore() if request.param == "memory" else FileNonceStore(tmp_path)


async def test_allocate_takes_max_of_stored_and_chain(store: NonceStore) -> None:
    assert isinstance(store, NonceStore)
    assert await store.peek(1, ADDR) is None
    assert await store.allocate(1, ADDR, chain_next=5) == 5
    assert await store.allocate(1, ADDR, chain_next=0) == 6  # store ahead of the chain
    assert await store.allocate(1, ADDR, chain_next=10, count=3) == 10  # chain ahead
    assert await store.peek(1, ADDR) == 13
    assert await store.allocate(2, ADDR, chain_next=0) == 0  # per chain id
    assert await store.allocate(1, ADDR.lower(), chain_next=0) == 13  # address case


async def test_release_only_the_latest_reservation(store: NonceStore) -> None:
    first = await store.allocate(1, ADDR, 0)
    second = await store.allocate(1, ADDR, 0)
    assert not await store.release(1, ADDR, first)
    assert await store.release(1, ADDR, second)
    assert await store.allocate(1, ADDR, 0) == second


async def test_reset(store: NonceStore) -> None:
    await store.allocate(1, ADDR, 9)
    await store.reset(1, ADDR, 4)
    assert await store.allocate(1, ADDR, 0) == 4


async def test_file_store_persists_and_rejects_corruption(tmp_path: Path) -> None:
    assert await FileNonceStore(tmp_path).allocate(7, ADDR, 3) == 3
    assert await FileNonceStore(tmp_path).allocate(7, ADDR, 0) == 4
    (tmp_path / f"7-{ADDR.lower()}.json").write_text("garbage")
    with pytest.raises(NonceError):
        await FileNonceStore(tmp_path).allocate(7, ADDR, 0)


def test_file_store_defaults_to_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERFLOW_DATA_DIR", str(tmp_path))
    assert FileNonceStore().directory == tmp_path / "nonces"
