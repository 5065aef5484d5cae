"""Members' webhook endpoints: register, list, delete, rotate the secret, read the deliveries
and their attempts, redeliver, ping. Every endpoint is its owner's alone (another member's
is answered 404). Delivery itself is the dispatcher's (:mod:`backend.webhooks.dispatcher`).
No FastAPI in here."""

from __future__ import annotations

import json
import secrets
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth import Caller
from backend.errors import Conflict, NotFound
from backend.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from backend.schemas.common import iso
from backend.webhooks.config import WebhookRuntime
from backend.webhooks.sealing import new_secret
from backend.webhooks.ssrf import resolve
from db.engine import now_ms, now_s
from indexer import models as m

#: Endpoints a member may keep at once.
MAX_ENDPOINTS = 20


def endpoint_view(row: WebhookEndpoint) -> dict[str, Any]:
    previous = row.previous_until if row.previous_secret and row.previous_until else None
    return {
        "id": row.id,
        "owner": row.owner,
        "url": row.url,
        "event_types": json.loads(row.event_types),
        "description": row.description,
        "status": row.status,
        "failing_reason": row.failing_reason,
        "failing_since": iso(row.failing_since),
        "previous_secret_expires_at": iso(previous) if previous and previous > now_s() else None,
        "created_at": iso(row.created_at),
    }


def _ms(value: int | None) -> Any:
    return None if value is None else iso(value // 1000)


def delivery_view(row: WebhookDelivery, attempts: list[WebhookAttempt]) -> dict[str, Any]:
    return {
        "id": row.id,
        "webhook_id": row.endpoint_id,
        "event_id": row.event_id,
        "event_type": row.event_type,
        "object_key": row.object_key,
        "status": row.status,
        "attempts": row.attempts,
        "next_attempt_at": _ms(row.next_attempt_at) if row.status == "pending" else None,
        "created_at": _ms(row.created_at),
        "delivered_at": _ms(row.delivered_at),
        "last_status_code": row.last_status_code,
        "last_error": row.last_error,
        "attempt_log": [
            {
                "attempted_at": _ms(a.attempted_at),
                "latency_ms": a.latency_ms,
                "status_code": a.status_code,
                "error": a.error,
                "ok": a.ok,
            }
            for a in attempts
        ],
    }


async def owned(session: AsyncSession, caller: Caller, webhook_id: str) -> WebhookEndpoint:
    row = await session.get(WebhookEndpoint, webhook_id)
    if row is None or row.owner != caller.address or row.status == "deleted":
        raise NotFound("no such webhook", code="webhook_not_found")
    return row


async def create(
    session: AsyncSession,
    runtime: WebhookRuntime,
    caller: Caller,
    url: str,
    event_types: list[str],
    description: str | None,
) -> dict[str, Any]:
    """Register an endpoint; its signing secret is answered this once (stored sealed)."""
    await resolve(url, runtime.allow_loopback)  # refuses private targets before storing
    count = (
        await session.execute(
            select(func.count())
            .select_from(WebhookEndpoint)
            .where(WebhookEndpoint.owner == caller.address, WebhookEndpoint.status != "deleted")
        )
    ).scalar_one()
    if count >= MAX_ENDPOINTS:
        raise Conflict(
            f"a member keeps at most {MAX_ENDPOINTS} webhooks", code="webhook_limit_reached"
        )
    endpoint_id = "wh_" + secrets.token_hex(12)
    secret = new_secret()
    last = (await session.execute(select(func.max(m.OutboxEntry.seq)))).scalar_one()
    row = WebhookEndpoint(
        id=endpoint_id,
        owner=caller.address,
        url=url,
        event_types=json.dumps(event_types),
        description=description,
        secret=runtime.sealer.seal(secret, endpoint_id),
        previous_secret=None,
        previous_until=None,
        status="active",
        failing_reason=None,
        failing_since=None,
        from_seq=last or 0,
        created_at=now_s(),
    )
    session.add(row)
    await session.commit()
    return {**endpoint_view(row), "secret": secret}


async def list_endpoints(
    session: AsyncSession, caller: Caller, after: str | None, limit: int
) -> list[dict[str, Any]]:
    query = select(WebhookEndpoint).where(
        WebhookEndpoint.owner == caller.address, WebhookEndpoint.status != "deleted"
    )
    if after is not None:
        query = query.where(WebhookEndpoint.id > after)
    rows = (await session.execute(query.order_by(WebhookEndpoint.id).limit(limit))).scalars()
    return [endpoint_view(r) for r in rows]


async def get_endpoint(session: AsyncSession, caller: Caller, webhook_id: str) -> dict[str, Any]:
    return endpoint_view(await owned(session, caller, webhook_id))


async def delete(session: AsyncSession, caller: Caller, webhook_id: str) -> dict[str, Any]:
    """Stop the endpoint: nothing more is queued or sent to it (its history stays)."""
    row = await owned(session, caller, webhook_id)
    row.status = "deleted"
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == row.id, WebhookDelivery.status == "pending")
        .values(status="cancelled", last_error="webhook deleted")
    )
    await session.commit()
    return endpoint_view(row)


async def rotate(
    session: AsyncSession, runtime: WebhookRuntime, caller: Caller, webhook_id: str, overlap_s: int
) -> dict[str, Any]:
    """A new secret (answered once); deliveries are signed with both for ``overlap_s``."""
    row = await owned(session, caller, webhook_id)
    secret = new_secret()
    row.previous_secret = row.secret if overlap_s > 0 else None
    row.previous_until = now_s() + overlap_s if overlap_s > 0 else None
    row.secret = runtime.sealer.seal(secret, row.id)
    await session.commit()
    return {**endpoint_view(row), "secret": secret}


async def list_deliveries(
    session: AsyncSession,
    caller: Caller,
    webhook_id: str,
    status: str | None,
    after: int | None,
    limit: int,
) -> list[dict[str, Any]]:
    """The endpoint's deliveries, newest first, each with its attempts."""
    row = await owned(session, caller, webhook_id)
    query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == row.id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    if after is not None:
        query = query.where(WebhookDelivery.id < after)
    deliveries = list(
        (await session.execute(query.order_by(WebhookDelivery.id.desc()).limit(limit))).scalars()
    )
    attempts: dict[int, list[WebhookAttempt]] = {d.id: [] for d in deliveries}
    if deliveries:
        found = await session.execute(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(list(attempts)))
            .order_by(WebhookAttempt.id)
        )
        for a in found.scalars():
            attempts[a.delivery_id].append(a)
    return [delivery_view(d, attempts[d.id]) for d in deliveries]


async def redeliver(
    session: AsyncSession, caller: Caller, webhook_id: str, delivery_id: int
) -> dict[str, Any]:
    """Queue a delivery again, now (the same body; a new retry window); an endpoint marked
    failing is active again."""
    row = await owned(session, caller, webhook_id)
    delivery = await session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.endpoint_id != row.id:
        raise NotFound("no such delivery", code="webhook_delivery_not_found")
    now = now_ms()
    delivery.status = "pending"
    delivery.next_attempt_at = now
    delivery.created_at = now
    row.status = "active"
    row.failing_reason = None
    row.failing_since = None
    await session.commit()
    return delivery_view(delivery, [])


async def ping(session: AsyncSession, caller: Caller, webhook_id: str) -> dict[str, Any]:
    """Queue a ``ping`` event to the endpoint (to check it receives and verifies)."""
    row = await owned(session, caller, webhook_id)
    event_id = "evt_ping_" + secrets.token_hex(12)
    now = now_ms()
    body = json.dumps(
        {
            "id": event_id,
            "type": "ping",
            "created_at": iso(now // 1000).isoformat().replace("+00:00", "Z"),  # type: ignore[union-attr]
            "data": {"webhook_id": row.id},
        },
        separators=(",", ":"),
    )
    delivery = WebhookDelivery(
        endpoint_id=row.id,
        seq=0,
        event_id=event_id,
        event_type="ping",
        object_key=f"ping:{event_id}",
        body=body,
        status="pending",
        attempts=0,
        next_attempt_at=now,
        lease_until=0,
        lease_owner=None,
        created_at=now,
        block_time=None,
        delivered_at=None,
        last_status_code=None,
        last_error=None,
    )
    session.add(delivery)
    await session.commit()
    return delivery_view(delivery, [])
