"""What one API worker holds for its whole life: settings, database, chain, keystore, and
the :class:`~backend.ports.Ports` its services are given.

:func:`open_context` connects to the node, finds the deployment of its chain, migrates the
database, opens the keystore and seeds the operator (the deployer account, which holds the
operator role on chain): its key goes into the keystore and ``TIERFLOW_OPERATOR_API_KEY``
becomes its API key, or, when unset and the operator has no key yet, one is generated and
printed once.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass

from eth_account import Account
from eth_utils.address import to_checksum_address
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from backend.auth import CallerCache, seeded_key, store_key
from backend.config import ApiSettings
from backend.gateway import Gateway
from backend.idempotency import Idempotency
from backend.keystore import Keystore
from backend.models import ApiKey, KeystoreEntry, MemberProfile, migrate
from backend.ports import Ports
from backend.ratelimit import RateLimiter
from db.engine import create_pooled_engine, now_s, sessions
from db.locks import exclusive, lock_key
from ledger.deployment import Deployment, load_deployment, record_path
from ledger.errors import ConfigurationError
from ledger.node import Web3Client, close_web3, keep_alive, make_web3

#: The advisory lock (PostgreSQL) / lock file (SQLite) under which a starting worker seeds the
#: operator ("tfseedop").
SEED_LOCK = lock_key(b"tfseedop")


@dataclass
class AppContext:
    settings: ApiSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    w3: Web3Client
    chain_id: int
    deployment: Deployment
    keystore: Keystore
    gateway: Gateway
    idempotency: Idempotency
    limiter: RateLimiter
    operator: str
    ports: Ports
    #: Callers authenticated for reads, for ``TIERFLOW_API_CALLER_CACHE_S``.
    callers: CallerCache


@contextlib.asynccontextmanager
async def open_context(settings: ApiSettings) -> AsyncIterator[AppContext]:
    w3 = make_web3(settings.rpc_url, settings.api_node_timeout_s)
    engine = create_pooled_engine(settings.database_url, settings.api_database_lock_wait_s)
    gateway: Gateway | None = None
    try:
        await keep_alive(w3)
        chain_id = int(await w3.eth.chain_id)
        deployment = load_deployment(chain_id)
        if deployment is None or not deployment.complete:
            raise ConfigurationError(
                f"no complete deployment recorded for chain {chain_id} "
                f"({record_path(chain_id)}): run `tierflow deploy` first"
            )
        await migrate(engine)
        try:
            password = settings.hosted_keys_secret(chain_id)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from exc
        keystore = Keystore(password)
        session_factory = sessions(engine)
        operator = await _seed_operator(settings, chain_id, keystore, engine)
        relayer_key = settings.relayer_key(chain_id)
        relayer = Account.from_key(relayer_key.get_secret_value()) if relayer_key else None
        callers = CallerCache(settings.api_caller_cache_s)
        gateway = Gateway(
            w3,
            deployment,
            keystore,
            engine,
            settings.api_mirror_wait_s,
            settings.api_receipt_timeout_s,
            settings.api_node_unavailable_s,
            relayer=relayer,
            intent_ttl_s=settings.intent_ttl_s,
        )
        yield AppContext(
            settings=settings,
            engine=engine,
            sessions=session_factory,
            w3=w3,
            chain_id=chain_id,
            deployment=deployment,
            keystore=keystore,
            gateway=gateway,
            idempotency=Idempotency(engine, lease_ms=int(settings.api_idempotency_lease_s * 1000)),
            limiter=RateLimiter(engine, settings.api_rate_limit),
            operator=operator,
            callers=callers,
            ports=Ports(session_factory, gateway, callers),
        )
    finally:
        if gateway is not None:
            await gateway.close()
        await engine.dispose()
        await close_web3(w3)


async def _seed_operator(
    settings: ApiSettings,
    chain_id: int,
    keystore: Keystore,
    engine: AsyncEngine,
) -> str:
    key = settings.deployer_key(chain_id)
    if key is None:
        raise ConfigurationError("TIERFLOW_DEPLOYER_PRIVATE_KEY is needed: it is the operator")
    account, keyfile = await asyncio.to_thread(keystore.import_key, key.get_secret_value())
    address = to_checksum_address(account.address)
    # Several workers start at once and each seeds: one at a time, so the later ones find the
    # rows (and a generated key) the first made, and no key is generated twice.
    generated: str | None = None
    async with exclusive(engine, SEED_LOCK, "seed") as conn:
        session = AsyncSession(bind=conn, expire_on_commit=False)
        if await session.get(KeystoreEntry, address) is None:
            session.add(KeystoreEntry(address=address, keyfile=keyfile))
        if await session.get(MemberProfile, address) is None:
            session.add(
                MemberProfile(address=address, name="Platform operator", created_at=now_s())
            )
        presented = settings.operator_api_key
        if presented is not None:
            try:
                key_id, digest = seeded_key(presented.get_secret_value())
            except ValueError as exc:
                raise ConfigurationError(str(exc)) from exc
            if await session.get(ApiKey, key_id) is None:
                session.add(
                    ApiKey(
                        id=key_id,
                        member=address,
                        secret_sha256=digest,
                        label="TIERFLOW_OPERATOR_API_KEY",
                        created_at=now_s(),
                    )
                )
        else:
            existing = (
                await session.execute(select(ApiKey.id).where(ApiKey.member == address))
            ).first()
            if existing is None:
                _, generated = await store_key(session, address, "generated at first start")
        await session.flush()
        await session.close()
    if generated is not None:  # once it is committed
        print(
            f"tierflow: the operator's API key (shown once, keep it): {generated}",
            file=sys.stderr,
            flush=True,
        )
    return address
