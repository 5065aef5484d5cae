"""Unlocking hosted members' keys (:class:`backend.keystore.Keystore`): each key decrypted once
however many ask at once; members' decryptions do not queue behind one another; a key that
is not held is refused, and asked for again next time."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from eth_account import Account
from pydantic import SecretStr

from backend.errors import NotFound
from backend.keystore import Keystore


async def test_keys_are_decrypted_once_and_side_by_side(monkeypatch: pytest.MonkeyPatch) -> None:
    store = Keystore(SecretStr("a password for this test only"))
    made = [store.new_account() for _ in range(3)]
    keyfiles: dict[str, str] = {account.address: keyfile for account, keyfile in made}
    restarted = Keystore(SecretStr("a password for this test only"))  # nothing unlocked yet

    decrypt = Account.decrypt
    inside = 0
    most = 0
    calls: list[str] = []
    guard = threading.Lock()

    def slow_decrypt(keyfile: Any, password: str) -> bytes:
        nonlocal inside, most
        with guard:
            inside += 1
            most = max(most, inside)
            calls.append(keyfile["address"])
        time.sleep(0.2)  # scrypt's deliberate cost
        try:
            return bytes(decrypt(keyfile, password))
        finally:
            with guard:
                inside -= 1

    monkeypatch.setattr(Account, "decrypt", staticmethod(slow_decrypt))

    async def keyfile_of(address: str) -> str | None:
        return keyfiles.get(address)

    asks = [a for a in keyfiles for _ in range(4)]
    unlocked = await asyncio.gather(*(restarted.account(keyfile_of, a) for a in asks))
    assert [u.address for u in unlocked] == asks
    assert len(calls) == 3  # twelve asks, three keys, three decryptions
    assert most == 3  # the three members' decryptions overlapped
    again = await restarted.account(keyfile_of, asks[0])
    assert again.address == asks[0]
    assert len(calls) == 3  # from memory

    later, later_keyfile = store.new_account()
    with pytest.raises(NotFound):
        await restarted.account(keyfile_of, later.address)
    keyfiles[later.address] = later_keyfile  # stored since: found, no failure remembered
    assert (await restarted.account(keyfile_of, later.address)).address == later.address
