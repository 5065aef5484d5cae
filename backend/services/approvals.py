"""Dual control (SPEC §1, 经办 / 复核): with it on, a member's business write waits for a
checker of the same member. No FastAPI in here.

The maker's request (method, path, exact body, its Idempotency-Key and the write as a command)
is held as an **approval**; the maker's retries under the same key answer the same ``202``
until a checker decides. :func:`decide` records the decision and the checker's identity (a
checker never decides its own request); an approved write is then run by the API under the
maker's key and identity (:mod:`backend.api.routes.approvals`), so the maker's retry replays
its answer; a declined one answers ``409 approval_declined`` to every retry. Organisation
settings (users, keys, dual control itself) are the admin's and never wait.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from backend.auth import Caller
from backend.errors import Conflict, Forbidden, Invalid, NotFound
from backend.models import Approval, IdempotencyRecord, MemberProfile
from backend.schemas.common import iso
from backend.services.commands import Command
from db.engine import now_s

#: The writes dual control holds: the member's business on chain and its credit lines.
DUAL_CONTROLLED = frozenset(
    {
        "invoices.register",
        "invoices.confirm",
        "invoices.void",
        "payables.issue",
        "payables.cancel",
        "payables.mark_overdue",
        "payables.settle",
        "claims.transfer",
        "financing.apply",
        "financing.approve",
        "financing.reject",
        "financing.withdraw",
        "financing.expire",
        "credit_lines.set",
    }
)


def approval_view(row: Approval) -> dict[str, Any]:
    return {
        "id": row.id,
        "member": row.member,
        "status": row.status,
        "operation": row.operation,
        "arguments": json.loads(row.arguments),
        "method": row.method,
        "path": row.path,
        "maker_user_id": row.maker_user_id,
        "maker_key_id": row.maker_key_id,
        "checker_user_id": row.checker_user_id,
        "checker_key_id": row.checker_key_id,
        "reason": row.reason,
        "created_at": iso(row.created_at),
        "decided_at": iso(row.decided_at),
    }


#: A member's dual control setting. Built once, run on a Core connection: an ORM session's
#: ``scalar`` of a statement built per request cost more than the read itself.
_DUAL_CONTROL = select(MemberProfile.dual_control).where(
    MemberProfile.address == bindparam("address")
)


def controlled(command: Command) -> bool:
    """Whether dual control, when on, holds ``command``."""
    return command.operation in DUAL_CONTROLLED


async def needs_approval(engine: AsyncEngine, caller: Caller, command: Command) -> bool:
    """Whether ``command`` by ``caller`` waits for a checker (its member has dual control).
    Read at every write, never cached (an admin's switch binds the next write, whichever worker
    serves it): with the write's key (:attr:`Caller.dual_control`, the key's lookup of this
    request), else here."""
    if not controlled(command):
        return False
    if caller.dual_control is not None:
        return caller.dual_control
    async with engine.connect() as conn:
        on = (await conn.execute(_DUAL_CONTROL, {"address": caller.address})).scalar()
    return bool(on)


async def hold(
    sessions: async_sessionmaker[AsyncSession],
    caller: Caller,
    key: str,
    request: tuple[str, str, bytes],
    digest: str,
    command: Command,
) -> dict[str, Any] | None:
    """The approval holding this request (made on its first arrival); ``None`` when the key
    already belongs to a write that ran (it replays as any other). A declined approval
    raises ``approval_declined``; the same key with another request ``idempotency_key_reused``."""
    method, path, body = request
    async with sessions() as session:
        row = await _held(session, caller.address, key)
        if row is None:
            ran = await session.get(IdempotencyRecord, (caller.address, key))
            if ran is not None:
                return None
            session.add(
                Approval(
                    id="apr_" + secrets.token_hex(8),
                    member=caller.address,
                    idempotency_key=key,
                    method=method,
                    path=path,
                    body=body.decode("latin-1"),
                    request_sha256=digest,
                    operation=command.operation,
                    arguments=json.dumps(command.args),
                    maker_key_id=caller.key_id,
                    maker_user_id=caller.user_id,
                    status="pending",
                    created_at=now_s(),
                )
            )
            try:
                await session.commit()
            except IntegrityError:  # a duplicate of this request made it first
                await session.rollback()
            row = await _held(session, caller.address, key)
            assert row is not None
        if row.request_sha256 != digest:
            raise Invalid(
                "this Idempotency-Key was used for another request", code="idempotency_key_reused"
            )
        if row.status == "declined":
            raise Conflict(
                "a checker declined this request" + (f": {row.reason}" if row.reason else ""),
                code="approval_declined",
                extra={"approval_id": row.id},
            )
        return approval_view(row)


async def _held(session: AsyncSession, member: str, key: str) -> Approval | None:
    found: Approval | None = (
        await session.execute(
            select(Approval).where(Approval.member == member, Approval.idempotency_key == key)
        )
    ).scalar_one_or_none()
    return found


async def get(session: AsyncSession, caller: Caller, approval_id: str) -> Approval:
    """One approval of the caller's member (another member's is not found)."""
    row = await session.get(Approval, approval_id)
    if row is None or row.member != caller.address:
        raise NotFound("no such approval", code="approval_not_found")
    return row


async def list_approvals(
    session: AsyncSession, caller: Caller, status: str | None, after: str | None, limit: int
) -> list[dict[str, Any]]:
    """The caller's member's approvals, oldest first."""
    query = (
        select(Approval)
        .where(Approval.member == caller.address)
        .order_by(Approval.created_at, Approval.id)
        .limit(limit)
    )
    if status:
        query = query.where(Approval.status == status)
    if after:
        query = query.where(Approval.id > after)
    return [approval_view(r) for r in (await session.execute(query)).scalars()]


async def decide(
    sessions: async_sessionmaker[AsyncSession],
    caller: Caller,
    approval_id: str,
    approve: bool,
    reason: str | None,
) -> Approval:
    """Record a checker's decision (the same decision again is a no-op); the approval after."""
    wanted = "approved" if approve else "declined"
    async with sessions() as session:
        row = await get(session, caller, approval_id)
        if caller.org_role != "checker":
            raise Forbidden("only the member's checkers decide approvals", code="not_checker")
        same_user = caller.user_id is not None and caller.user_id == row.maker_user_id
        if same_user or caller.key_id == row.maker_key_id:
            raise Forbidden("a checker cannot decide its own request", code="checker_is_maker")
        if row.status == "pending":
            # Only from pending: of two checkers deciding at once, the first decision stands.
            await session.execute(
                update(Approval)
                .where(Approval.id == approval_id, Approval.status == "pending")
                .values(
                    status=wanted,
                    checker_key_id=caller.key_id,
                    checker_user_id=caller.user_id,
                    reason=reason,
                    decided_at=now_s(),
                )
            )
            await session.commit()
            row = await get(session, caller, approval_id)
            await session.refresh(row)
        if row.status != wanted:
            raise Conflict(
                f"this approval was already {row.status}",
                code="approval_already_decided",
                extra={"approval_id": row.id},
            )
        return row
