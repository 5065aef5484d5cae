"""The console's sessions: a browser signs in once with an API key and then carries a random
session token in an HTTP-only cookie (``tf_console``), never the key itself.

- :func:`open_session` checks the key exactly as the API does (:func:`backend.auth.authenticate`)
  and stores a row in ``console_sessions``: the SHA-256 of the token (the token itself is never
  stored), the member, the key's id, a CSRF token for the session's forms, and the expiry
  (``TIERFLOW_CONSOLE_SESSION_TTL_S`` after sign-in; not extended by use).
- :func:`session_caller` turns a cookie back into a :class:`~backend.auth.Caller`, with the
  member's roles read from the mirror on every request (as for a key), and refuses it once the
  session expired, was closed, or its API key was revoked.
- :func:`close_session` ends it (sign-out).

No HTTP in here: the routes (:mod:`backend.api.routes.console_session`) own cookies and CSRF.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.auth import Caller, authenticate, roles_from_ids
from backend.models import ApiKey, ConsoleSession
from db.engine import now_s
from indexer import models as mirror


@dataclass(frozen=True)
class Opened:
    """A new session: the token for the cookie, its CSRF token, who signed in, how long."""

    token: str
    csrf_token: str
    caller: Caller
    ttl_s: int


@dataclass(frozen=True)
class Signed:
    """A live session: who it is and the CSRF token its forms carry."""

    caller: Caller
    csrf_token: str
    expires_at: int


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def open_session(engine: AsyncEngine, api_key: str, ttl_s: int) -> Opened:
    """Sign in with ``api_key`` (:class:`~backend.errors.Unauthorized` if it is not a live
    key); also clears sessions that expired."""
    async with engine.connect() as conn:
        caller = await authenticate(conn, f"Bearer {api_key.strip()}")
    token = secrets.token_urlsafe(32)
    csrf_token = secrets.token_urlsafe(32)
    now = now_s()
    async with engine.begin() as conn:
        await conn.execute(delete(ConsoleSession).where(ConsoleSession.expires_at <= now))
        await conn.execute(
            insert(ConsoleSession).values(
                token_sha256=digest(token),
                member=caller.address,
                api_key_id=caller.key_id,
                csrf_token=csrf_token,
                created_at=now,
                expires_at=now + ttl_s,
            )
        )
    return Opened(token, csrf_token, caller, ttl_s)


#: The session, its key (still not revoked), the member's status and every role the chain
#: grants it, in one round trip (a row per role).
_SESSION_LOOKUP = (
    select(
        ConsoleSession.member,
        ConsoleSession.api_key_id,
        ConsoleSession.csrf_token,
        ConsoleSession.expires_at,
        ApiKey.revoked_at,
        mirror.Member.status,
        mirror.RoleGrant.role,
    )
    .join(ApiKey, ApiKey.id == ConsoleSession.api_key_id)
    .outerjoin(mirror.Member, mirror.Member.address == ConsoleSession.member)
    .outerjoin(mirror.RoleGrant, mirror.RoleGrant.account == ConsoleSession.member)
    .where(ConsoleSession.token_sha256 == bindparam("token_sha256"))
)


async def session_caller(engine: AsyncEngine, token: str | None) -> Signed | None:
    """The live session behind a cookie's token, or None (no such session, expired, or its
    key revoked)."""
    if not token or len(token) > 200:
        return None
    async with engine.connect() as conn:
        rows = (await conn.execute(_SESSION_LOOKUP, {"token_sha256": digest(token)})).all()
    if not rows:
        return None
    first = rows[0]
    if first.revoked_at is not None or first.expires_at <= now_s():
        return None
    caller = Caller(
        address=first.member,
        roles=roles_from_ids(r.role for r in rows),
        status=first.status or "active",
        key_id=first.api_key_id,
    )
    return Signed(caller, first.csrf_token, first.expires_at)


async def close_session(engine: AsyncEngine, token: str | None) -> None:
    """Sign out: the session's row is removed (a copied cookie no longer works)."""
    if not token:
        return
    async with engine.begin() as conn:
        await conn.execute(
            delete(ConsoleSession).where(ConsoleSession.token_sha256 == digest(token))
        )
