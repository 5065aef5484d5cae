"""Webhook steps the webhook tests share: register an endpoint, read its deliveries."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.support.api import Member


async def register(member: Member, url: str, types: list[str] | None = None) -> dict[str, Any]:
    r = await member.http.post("/v1/webhooks", json={"url": url, "event_types": types or ["*"]})
    assert r.status_code == 201, r.text
    made: dict[str, Any] = r.json()
    assert made["secret"].startswith("whsec_")
    assert made["status"] == "active"
    return made


async def deliveries(member: Member, webhook_id: str, **params: Any) -> list[dict[str, Any]]:
    r = await member.http.get(f"/v1/webhooks/{webhook_id}/deliveries", params=params)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def settled(member: Member, webhook_id: str, within_s: float = 30.0) -> list[dict[str, Any]]:
    """The endpoint's deliveries once none is pending."""
    async with asyncio.timeout(within_s):
        while True:
            items = await deliveries(member, webhook_id, limit=200)
            if items and all(d["status"] != "pending" for d in items):
                return items
            await asyncio.sleep(0.1)


async def endpoint_in(
    member: Member, webhook_id: str, status: str, within_s: float = 30.0
) -> dict[str, Any]:
    """The endpoint once its ``status`` is ``status`` (``failing`` after retries run out)."""
    async with asyncio.timeout(within_s):
        while True:
            r = await member.http.get(f"/v1/webhooks/{webhook_id}")
            assert r.status_code == 200, r.text
            endpoint: dict[str, Any] = r.json()
            if endpoint["status"] == status:
                return endpoint
            await asyncio.sleep(0.2)
