"""Intents (SPEC §4): a ``self`` member's writes wait here for its signature. ``POST
/v1/intents/{id}/signature`` checks the signature recovers to the member (otherwise 403
``signature_not_member``, nothing sent) and that the request's deadline has not passed (409
``intent_expired``), then resumes the write: the relayer submits it through the forwarder and
the answer is exactly the write's own (stored under the write's Idempotency-Key, so the same
POST again, or the write retried with its key, replays it)."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from backend import forwarding
from backend.api.deps import (
    ContextDep,
    CurrentCaller,
    PageDep,
    SessionDep,
    UnkeyedWritesDep,
    writer,
)
from backend.api.problems import problem
from backend.auth import Caller
from backend.errors import Conflict, Forbidden, NotFound
from backend.idempotency import Statements
from backend.models import IntentRow
from backend.schemas.intents import IntentPublic, IntentsPublic, IntentStatus, SignatureSubmit
from backend.services import intents
from db.types import table_of

router = APIRouter(prefix="/v1/intents", tags=["intents"])
_INTENTS = table_of(IntentRow)
#: The intent, every column (its relay needs them all), and its signature kept (if it is
#: still open), built once.
_INTENT = select(_INTENTS).where(_INTENTS.c.id == bindparam("intent_id"))
_SIGN = (
    update(_INTENTS)
    .where(_INTENTS.c.id == bindparam("p_id"), _INTENTS.c.status == "open")
    .values(signature=bindparam("p_signature"), status="signed")
)
IntentPath = Annotated[str, Path(pattern="^int_[0-9a-f]{16}$", description="the intent")]
SIGNED = {
    200: {"description": "the write's own answer"},
    201: {"description": "the write's own answer (it created an object)"},
}


@router.get("", response_model=IntentsPublic)
async def list_intents(
    caller: CurrentCaller,
    session: SessionDep,
    ctx: ContextDep,
    page: PageDep,
    status: Annotated[IntentStatus | None, Query(description="default: the open ones")] = None,
) -> Any:
    """The caller's member's intents, oldest first; by default the open ones."""
    now = await ctx.gateway.chain_time()
    after = page.after if isinstance(page.after, str) else None
    items = await intents.list_intents(session, caller, now, page.limit, status, after)
    return {"items": items, "next_cursor": page.next_cursor(items, lambda i: i["id"])}


@router.get("/{intent_id}", response_model=IntentPublic)
async def get_intent(
    intent_id: IntentPath, caller: CurrentCaller, session: SessionDep, ctx: ContextDep
) -> Any:
    row = await session.get(IntentRow, intent_id)
    if row is None or row.member != caller.address:
        raise NotFound("no such intent", code="intent_not_found")
    return intents.shown(row, await ctx.gateway.chain_time())


@router.post("/{intent_id}/signature", responses=SIGNED)  # type: ignore[arg-type]
async def submit_signature(
    intent_id: IntentPath,
    body: SignatureSubmit,
    caller: Annotated[Caller, writer()],
    ctx: ContextDep,
    writes: UnkeyedWritesDep,
) -> Any:
    """The member's signature of the intent's typed data: the write is relayed and its own
    answer returned (see the module docstring)."""
    async with ctx.engine.connect() as conn:
        row = (await conn.execute(_INTENT, {"intent_id": intent_id})).first()
    if row is None or row.member != caller.address:
        raise NotFound("no such intent", code="intent_not_found")
    if row.status == "expired":
        raise Conflict("the intent expired unsigned", code="intent_expired")
    keep: Statements | None = None
    kept: dict[str, Any] = {}
    if row.status == "open":
        signature = bytes.fromhex(body.signature[2:])
        if forwarding.signer_of(bytes.fromhex(row.digest[2:]), signature) != row.member:
            raise Forbidden(
                "the signature is not the member's: nothing was sent", code="signature_not_member"
            )
        if await ctx.gateway.chain_time() > row.deadline:
            await _expire(ctx, row, writes.request.url.path)
            raise Conflict("the intent expired unsigned", code="intent_expired")
        signed = body.signature.lower()

        async def keep_signature(conn: AsyncConnection) -> None:
            # The signature kept with its intent in the transaction that takes the write's
            # key up again (one commit, not two). When this statement signed it, the row is
            # known as it now stands: the resumed write does not read it again.
            kept.clear()
            sign = {"p_id": row.id, "p_signature": signed}
            if (await conn.execute(_SIGN, sign)).rowcount == 1:
                now = {**row._mapping, "signature": signed, "status": "signed"}
                kept[row.id] = SimpleNamespace(**now)

        keep = keep_signature

    return await writes.resume(row.member, row.idempotency_key, keep, caller, kept)


async def _expire(ctx: Any, row: Any, instance: str) -> None:
    """An intent past its deadline: expired for good, and its write's answer is that."""
    async with ctx.engine.begin() as conn:
        await conn.execute(
            update(IntentRow)
            .where(IntentRow.id == row.id, IntentRow.status == "open")
            .values(status="expired")
        )
    body = problem(409, "intent_expired", "the intent expired unsigned", instance)
    body["intent_id"] = row.id
    await ctx.idempotency.finish(row.member, row.idempotency_key, 409, json.loads(json.dumps(body)))
