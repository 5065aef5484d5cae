"""Members' chain keys, encrypted at rest (eth-account keyfiles: scrypt + AES-128-CTR).

A key is generated when the operator creates a member and never leaves this module except
as a :class:`~eth_account.signers.local.LocalAccount` used to sign. Decrypting a keyfile
costs a deliberate fraction of a second (scrypt), so decrypted accounts are kept in memory
for the life of the worker. Keyfiles live in the ``keystore`` table, so every stateless API
worker can sign for every member. A key is decrypted once however many requests ask for it at
once, and one member's decryption never waits for another's (a worker's first writes after a
start, sixteen members at once, queued behind one lock: the last waited seconds).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.errors import NotFound
from backend.models import KeystoreEntry

#: scrypt work factor of new keyfiles (2**15: ~0.1 s on these machines; eth-account's own
#: default 2**18 would make creating a member take seconds).
SCRYPT_N = 2**15


class Keystore:
    """Creates, stores and unlocks members' chain keys."""

    def __init__(self, password: SecretStr) -> None:
        self._password = password
        self._unlocked: dict[str, LocalAccount] = {}
        self._unlocking: dict[str, asyncio.Future[LocalAccount]] = {}

    def new_account(self) -> tuple[LocalAccount, str]:
        """A fresh account and its encrypted keyfile (to store in the caller's transaction)."""
        account: LocalAccount = Account.create()
        keyfile = Account.encrypt(
            account.key, self._password.get_secret_value(), kdf="scrypt", iterations=SCRYPT_N
        )
        self._unlocked[to_checksum_address(account.address)] = account
        return account, json.dumps(keyfile)

    def import_key(self, private_key: str) -> tuple[LocalAccount, str]:
        """An existing key (the deployer, which is the first operator) and its keyfile."""
        account: LocalAccount = Account.from_key(private_key)
        keyfile = Account.encrypt(
            account.key, self._password.get_secret_value(), kdf="scrypt", iterations=SCRYPT_N
        )
        self._unlocked[to_checksum_address(account.address)] = account
        return account, json.dumps(keyfile)

    async def account(
        self, keyfile_of: Callable[[str], Awaitable[str | None]], address: str
    ) -> LocalAccount:
        """The member's account, unlocked (from memory after the first time); ``keyfile_of``
        reads its stored keyfile."""
        address = to_checksum_address(address)
        cached = self._unlocked.get(address)
        if cached is not None:
            return cached
        unlocking = self._unlocking.get(address)
        if unlocking is None:
            unlocking = asyncio.ensure_future(self._unlock(keyfile_of, address))
            self._unlocking[address] = unlocking
            unlocking.add_done_callback(lambda _: self._unlocking.pop(address, None))
        # Shielded: a caller that gives up does not cancel the others' decryption.
        return await asyncio.shield(unlocking)

    async def _unlock(
        self, keyfile_of: Callable[[str], Awaitable[str | None]], address: str
    ) -> LocalAccount:
        keyfile = await keyfile_of(address)
        if keyfile is None:
            raise NotFound("no chain key is held for this member", code="member_key_missing")
        password = self._password.get_secret_value()
        key = await asyncio.to_thread(Account.decrypt, json.loads(keyfile), password)
        account: LocalAccount = Account.from_key(key)
        self._unlocked[address] = account
        return account


def keyfiles(engine: AsyncEngine) -> Callable[[str], Awaitable[str | None]]:
    """A reader of stored keyfiles for :meth:`Keystore.account`, each through a short
    connection of its own."""

    async def keyfile_of(address: str) -> str | None:
        async with engine.connect() as conn:
            keyfile: str | None = (
                await conn.execute(
                    select(KeystoreEntry.keyfile).where(KeystoreEntry.address == address)
                )
            ).scalar_one_or_none()
        return keyfile

    return keyfile_of
