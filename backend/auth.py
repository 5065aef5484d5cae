"""API keys and who is calling.

A key is ``tf_<id>_<secret>``: ``id`` (12 hex digits) finds the row, ``secret`` (32 random
bytes, URL-safe) is checked against its SHA-256 in constant time. Keys are shown once, when
made (member creation, rotation), and can be revoked. ``TIERFLOW_OPERATOR_API_KEY``, when
set at first start, becomes the operator's key (it must have this form, or any 32+ character
secret, which is then given an id).

The caller's roles and status come from the mirror (``members``), that is from the chain:
the API never grants a role the chain does not record. Inside the member, a key belongs to an
organisation user (SPEC §1) whose role (``admin``, ``maker``, ``checker``) is the API's own:
a key without a user (the operator's, keys older than organisation users) acts as the admin.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from backend.errors import Conflict, Unauthorized
from backend.models import ApiKey, MemberProfile, OrgUser
from db.engine import now_s
from indexer import models as mirror
from ledger.roles import Role

PREFIX = "tf"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key() -> tuple[str, str, str]:
    """``(key id, full key to hand out once, digest to store)``."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return key_id, f"{PREFIX}_{key_id}_{secret}", _digest(secret)


def split_key(presented: str) -> tuple[str, str] | None:
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or len(parts[1]) != 12 or not parts[2]:
        return None
    return parts[1], parts[2]


def seeded_key(presented: str) -> tuple[str, str]:
    """``(key id, digest)`` of an operator key given in the settings."""
    split = split_key(presented)
    if split is not None:
        return split[0], _digest(split[1])
    if len(presented) < 32:
        raise ValueError("TIERFLOW_OPERATOR_API_KEY must be at least 32 characters")
    return hashlib.sha256(presented.encode()).hexdigest()[:12], _digest(presented)


#: Roles of a member organisation's users (the API's, not the chain's).
ORG_ROLES = ("admin", "maker", "checker")


@dataclass(frozen=True)
class Caller:
    """An authenticated member: its address, roles (from the chain), the key used and the
    organisation user holding it, with that user's role (``admin`` for a key of no user)."""

    address: str
    roles: frozenset[Role]
    status: str
    key_id: str
    user_id: str | None = None
    org_role: str = "admin"
    #: The member's dual control setting as read with the key, by the lookup of this request
    #: (a write's key is always looked up); ``None``: not read with it (a cached caller, one
    #: made without the lookup), so whoever needs it reads it.
    dual_control: bool | None = None

    def has(self, *roles: Role) -> bool:
        return any(r in self.roles for r in roles)

    @property
    def is_auditor(self) -> bool:
        return Role.AUDITOR in self.roles

    @property
    def is_operator(self) -> bool:
        return Role.OPERATOR in self.roles

    @property
    def sees_everything(self) -> bool:
        """Auditors and the operator read every object; others what they are party to."""
        return self.is_auditor or self.is_operator


#: The key, its member's status, every role the chain grants the member and its dual control
#: setting, in one round trip (a row per role). Built once: SQLAlchemy derives a statement's
#: cache key on every execution, and for a statement object that lives on, that work is
#: memoised.
_KEY_LOOKUP = (
    select(
        ApiKey.member,
        ApiKey.secret_sha256,
        ApiKey.revoked_at,
        mirror.Member.status,
        mirror.RoleGrant.role,
        ApiKey.user_id,
        OrgUser.role.label("org_role"),
        MemberProfile.dual_control,
    )
    .outerjoin(mirror.Member, mirror.Member.address == ApiKey.member)
    .outerjoin(OrgUser, OrgUser.id == ApiKey.user_id)
    .outerjoin(MemberProfile, MemberProfile.address == ApiKey.member)
    .outerjoin(mirror.RoleGrant, mirror.RoleGrant.account == ApiKey.member)
    .where(ApiKey.id == bindparam("key_id"))
)


async def authenticate(conn: AsyncConnection, authorization: str | None) -> Caller:
    """The member behind ``Authorization: Bearer <key>``, or :class:`Unauthorized`."""
    if not authorization:
        raise Unauthorized("an API key is required: Authorization: Bearer <key>")
    scheme, _, presented = authorization.partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise Unauthorized("use Authorization: Bearer <key>")
    presented = presented.strip()
    split = split_key(presented)
    key_id, secret = split if split is not None else (None, presented)
    if key_id is None:
        key_id, _ = seeded_key(presented) if len(presented) >= 32 else (None, "")
    rows = [] if key_id is None else (await conn.execute(_KEY_LOOKUP, {"key_id": key_id})).all()
    expected = rows[0].secret_sha256 if rows else _digest("no such key")
    ok = hmac.compare_digest(expected, _digest(secret))
    if key_id is None or not rows or not ok or rows[0].revoked_at is not None:
        raise Unauthorized("the API key is not valid", code="invalid_api_key")
    first = rows[0]
    return Caller(
        address=first.member,
        roles=frozenset(_ROLE_BY_ID[r.role] for r in rows if r.role in _ROLE_BY_ID),
        status=first.status or "active",
        key_id=key_id,
        user_id=first.user_id,
        org_role=first.org_role or "admin",
        dual_control=bool(first.dual_control),
    )


_ROLE_BY_ID = {"0x" + role.role_id.hex(): role for role in Role}


class CallerCache:
    """The callers one API worker authenticated for reads, by presented key, for ``ttl_s``.

    A read (``GET``/``HEAD``) whose ``Authorization`` was seen within ``ttl_s`` skips the key
    lookup (the key, its member's status and roles: one query joining four tables). Writes
    always look the key up. Correctness bounds, per worker:

    - a key revoked, or a member created, suspended, reinstated or whose KYC changed, through
      *this* worker is forgotten at once (:meth:`clear`, from
      :func:`backend.services.commands.execute`), and a lookup that began before the change is
      not cached after it (the generation check);
    - a change made through *another* worker, or on chain without the API (a role granted
      with ``cast``), shows in this worker's reads within ``ttl_s`` (writes: at once).

    The presented key is kept as its SHA-256 only; a wrong secret for a cached key id misses.
    A cached caller keeps no dual control setting (:attr:`Caller.dual_control` ``None``): were
    one ever to reach a write, the setting would be read afresh there.
    """

    def __init__(
        self,
        ttl_s: float,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self.max_entries = max_entries
        self.generation = 0
        self.hits = 0
        self._entries: dict[bytes, tuple[float, Caller]] = {}

    @staticmethod
    def _key(authorization: str) -> bytes:
        return hashlib.sha256(authorization.encode()).digest()

    def get(self, authorization: str | None) -> Caller | None:
        if not authorization or self.ttl_s <= 0:
            return None
        key = self._key(authorization)
        found = self._entries.get(key)
        if found is None:
            return None
        if found[0] <= self.clock():
            del self._entries[key]
            return None
        self.hits += 1
        return found[1]

    def put(self, authorization: str | None, caller: Caller, generation: int) -> None:
        """Keep ``caller`` if nothing was forgotten since ``generation`` was read."""
        if not authorization or self.ttl_s <= 0 or generation != self.generation:
            return
        if len(self._entries) >= self.max_entries:
            now = self.clock()
            self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
        kept = caller if caller.dual_control is None else replace(caller, dual_control=None)
        self._entries[self._key(authorization)] = (self.clock() + self.ttl_s, kept)

    def clear(self) -> None:
        """Forget every caller (a key or a member changed through this worker)."""
        self.generation += 1
        self._entries.clear()


def roles_from_ids(role_ids: Iterable[str | None]) -> frozenset[Role]:
    """The roles among the mirror's role ids (``role_grants.role``); unknown ids skipped."""
    return frozenset(_ROLE_BY_ID[r] for r in role_ids if r in _ROLE_BY_ID)


async def caller_of_key(conn: AsyncConnection, key_id: str) -> Caller:
    """The caller a stored key stood for (a maker's write run once a checker approved it)."""
    rows = (await conn.execute(_KEY_LOOKUP, {"key_id": key_id})).all()
    if not rows:
        raise Unauthorized("the API key is not valid", code="invalid_api_key")
    first = rows[0]
    return Caller(
        address=first.member,
        roles=frozenset(_ROLE_BY_ID[r.role] for r in rows if r.role in _ROLE_BY_ID),
        status=first.status or "active",
        key_id=key_id,
        user_id=first.user_id,
        org_role=first.org_role or "admin",
        dual_control=bool(first.dual_control),
    )


async def roles_of(session: AsyncSession, address: str) -> frozenset[Role]:
    """The roles the chain grants ``address`` (the mirror's ``role_grants``): for members as
    for the deployer, which holds the operator role without being a registered member."""
    granted = await session.execute(
        select(mirror.RoleGrant.role).where(mirror.RoleGrant.account == address)
    )
    return frozenset(_ROLE_BY_ID[r] for r in granted.scalars() if r in _ROLE_BY_ID)


#: Live (not revoked) API keys a member may hold.
MAX_KEYS_PER_MEMBER = 20


async def store_key(
    session: AsyncSession, member: str, label: str, user_id: str | None = None
) -> tuple[ApiKey, str]:
    """Make a key for ``member`` (of its user ``user_id``, in the caller's transaction);
    returns the row and the key. A member holds at most :data:`MAX_KEYS_PER_MEMBER` live keys
    (409 ``api_key_limit``): more keys would not raise its rate limit (that is per member)
    but each is one more secret to leak."""
    live = await session.scalar(
        select(func.count())
        .select_from(ApiKey)
        .where(ApiKey.member == member, ApiKey.revoked_at.is_(None))
    )
    if (live or 0) >= MAX_KEYS_PER_MEMBER:
        raise Conflict(
            f"a member holds at most {MAX_KEYS_PER_MEMBER} live API keys: revoke one first",
            code="api_key_limit",
        )
    key_id, full, digest = new_key()
    row = ApiKey(
        id=key_id,
        member=member,
        secret_sha256=digest,
        label=label,
        created_at=now_s(),
        user_id=user_id,
    )
    session.add(row)
    return row, full
