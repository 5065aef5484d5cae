"""Webhooks (SPEC §4): a member registers endpoints and reads what was delivered to them.

These are the platform's own settings, not chain writes: they take no Idempotency-Key (a
retried registration makes a second endpoint, which its owner sees and may delete)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request

from backend.api.deps import ContextDep, CurrentCaller, PageDep, SessionDep, writer
from backend.auth import Caller
from backend.errors import Invalid, Unavailable
from backend.schemas.webhooks import (
    DeliveriesPublic,
    DeliveryPublic,
    WebhookCreate,
    WebhookCreated,
    WebhookPublic,
    WebhookRotate,
    WebhooksPublic,
)
from backend.services import webhooks as service
from backend.webhooks.config import WebhookRuntime, WebhookSettings

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
#: Any member; auditors read and change nothing (as everywhere).
Member = Annotated[Caller, writer()]
WebhookId = Annotated[
    str,
    Path(
        min_length=3,
        max_length=32,
        pattern=r"^wh_[0-9a-f]+$",
        examples=["wh_0123456789abcdef01234567"],
    ),
]
DeliveryId = Annotated[int, Path(ge=1, le=2**63 - 1)]


async def get_runtime(request: Request, ctx: ContextDep) -> WebhookRuntime:
    runtime: WebhookRuntime | None = getattr(request.app.state, "webhooks", None)
    if runtime is None:
        try:
            runtime = WebhookRuntime(WebhookSettings(), ctx.chain_id)
        except ValueError as exc:
            raise Unavailable(str(exc), code="webhooks_not_configured") from exc
        request.app.state.webhooks = runtime
    return runtime


RuntimeDep = Annotated[WebhookRuntime, Depends(get_runtime)]


@router.post("", status_code=201, response_model=WebhookCreated)
async def create_webhook(
    body: WebhookCreate, caller: Member, session: SessionDep, runtime: RuntimeDep
) -> Any:
    """Register an endpoint for the events the caller may see; answers its signing secret
    (shown once)."""
    return await service.create(
        session, runtime, caller, body.url, body.event_types, body.description
    )


@router.get("", response_model=WebhooksPublic)
async def list_webhooks(caller: CurrentCaller, session: SessionDep, page: PageDep) -> Any:
    """The caller's endpoints."""
    if page.after is not None and not isinstance(page.after, str):
        raise Invalid("the cursor is not one this API gave out", code="cursor_invalid")
    items = await service.list_endpoints(session, caller, page.after, page.limit)
    return {"items": items, "next_cursor": page.next_cursor(items, lambda w: w["id"])}


@router.get("/{webhook_id}", response_model=WebhookPublic)
async def get_webhook(webhook_id: WebhookId, caller: CurrentCaller, session: SessionDep) -> Any:
    """One endpoint (its status, and why it is failing if it is)."""
    return await service.get_endpoint(session, caller, webhook_id)


@router.delete("/{webhook_id}", response_model=WebhookPublic)
async def delete_webhook(webhook_id: WebhookId, caller: Member, session: SessionDep) -> Any:
    """Stop an endpoint; what was queued for it is cancelled."""
    return await service.delete(session, caller, webhook_id)


@router.post("/{webhook_id}/rotate-secret", response_model=WebhookCreated)
async def rotate_secret(
    webhook_id: WebhookId,
    body: WebhookRotate,
    caller: Member,
    session: SessionDep,
    runtime: RuntimeDep,
) -> Any:
    """A new signing secret (shown once); the old one keeps signing alongside for
    ``overlap_s``."""
    return await service.rotate(session, runtime, caller, webhook_id, body.overlap_s)


@router.post("/{webhook_id}/ping", status_code=202, response_model=DeliveryPublic)
async def ping_webhook(webhook_id: WebhookId, caller: Member, session: SessionDep) -> Any:
    """Queue a ``ping`` event to the endpoint."""
    return await service.ping(session, caller, webhook_id)


@router.get("/{webhook_id}/deliveries", response_model=DeliveriesPublic)
async def list_deliveries(
    webhook_id: WebhookId,
    caller: CurrentCaller,
    session: SessionDep,
    page: PageDep,
    status: Annotated[
        Literal["pending", "succeeded", "failed", "cancelled"] | None,
        Query(description="only deliveries in this state"),
    ] = None,
) -> Any:
    """Every delivery to the endpoint, newest first, with each attempt (status, latency,
    response code)."""
    if page.after is not None and not isinstance(page.after, int):
        raise Invalid("the cursor is not one this API gave out", code="cursor_invalid")
    items = await service.list_deliveries(
        session, caller, webhook_id, status, page.after, page.limit
    )
    return {"items": items, "next_cursor": page.next_cursor(items, lambda d: d["id"])}


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    response_model=DeliveryPublic,
)
async def redeliver(
    webhook_id: WebhookId, delivery_id: DeliveryId, caller: Member, session: SessionDep
) -> Any:
    """Send a delivery again (same event, same body); reactivates a failing endpoint."""
    return await service.redeliver(session, caller, webhook_id, delivery_id)
