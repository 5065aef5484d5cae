"""Webhook endpoints, their deliveries and attempts (SPEC §4)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from backend.schemas.common import Input, Output, PageOf, Timestamp

EventType = Annotated[
    str,
    Field(min_length=1, max_length=72, pattern=r"^(\*|[A-Z][A-Za-z]+)$", examples=["ClaimSplit"]),
]


class WebhookCreate(Input):
    url: str = Field(min_length=8, max_length=2048, description="http(s) URL, a public address")
    event_types: list[EventType] = Field(
        min_length=1,
        max_length=64,
        description='Solidity event names such as "ClaimSplit" (retractions "<Event>Reverted" '
        'follow their event), or ["*"] for all',
    )
    description: str | None = Field(default=None, max_length=200)

    @field_validator("event_types")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        if "*" in v and len(v) > 1:
            raise ValueError('"*" stands alone')
        return sorted(set(v))


class WebhookRotate(Input):
    overlap_s: int = Field(
        default=86_400,
        ge=0,
        le=7 * 86_400,
        description="how long deliveries are also signed with the old secret",
    )


class WebhookPublic(Output):
    id: str
    owner: str
    url: str
    event_types: list[str]
    description: str | None = None
    status: str = Field(description="active, or failing (deliveries stopped: see the reason)")
    failing_reason: str | None = None
    failing_since: Timestamp | None = None
    previous_secret_expires_at: Timestamp | None = None
    created_at: Timestamp


class WebhookCreated(WebhookPublic):
    secret: str = Field(description="the signing secret, shown once")


class WebhooksPublic(PageOf[WebhookPublic]):
    pass


class AttemptPublic(Output):
    attempted_at: Timestamp
    latency_ms: int
    status_code: int | None = None
    error: str | None = None
    ok: bool


class DeliveryPublic(Output):
    id: int
    webhook_id: str
    event_id: str
    event_type: str
    object_key: str
    status: str = Field(description="pending, succeeded, failed (given up) or cancelled")
    attempts: int
    next_attempt_at: Timestamp | None = None
    created_at: Timestamp
    delivered_at: Timestamp | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    attempt_log: list[AttemptPublic]


class DeliveriesPublic(PageOf[DeliveryPublic]):
    pass
