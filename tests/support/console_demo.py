"""A platform with the demo's payable on it, for the console's live tests: anvil, the deployed
suite, ``tierflow index`` and ``tierflow serve`` as real processes (:class:`bench.stack.Stack`),
and the story of ``tierflow demo`` told up to maturity (onboarding, the payable passed down
three tiers, a financing the policy approves and one a person approves), so the tree holds
active, financed and locked pieces. Plus an outsider: a member party to nothing of it."""

from __future__ import annotations

import contextlib
import html
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.stack import Stack
from tests.support.api import KYC_UNTIL
from tierflow.demo import STEPS
from tierflow.demo_story import Story

#: The story's steps before the clock is moved past the due date.
BEFORE_MATURITY = tuple(
    step for title, step in STEPS if "clock" not in title and "settle" not in title
)


@dataclass
class Demo:
    stack: Stack
    story: Story
    outsider_key: str
    outsider_address: str

    @property
    def payable_id(self) -> int:
        return int(self.story.payable["id"])

    def key(self, role: str) -> str:
        return self.story[role].key

    async def api_get(self, key: str, path: str, **params: Any) -> httpx.Response:
        async with self.stack.client(key) as http:
            return await http.get(path, params=params or None)

    async def api_post(self, key: str, path: str, body: dict[str, Any]) -> httpx.Response:
        """A write as ``key`` (a fresh Idempotency-Key)."""
        async with self.stack.client(key) as http:
            return await http.post(path, json=body, headers=Stack.idem())


@contextlib.asynccontextmanager
async def demo_platform(root: Path, database_url: str | None = None) -> AsyncIterator[Demo]:
    async with Stack.start(root, database_url=database_url) as stack:
        story = Story(stack.base_url, stack.operator_key, "CONSOLE")
        try:
            for step in BEFORE_MATURITY:
                await step(story)
            async with stack.client(stack.operator_key) as op:
                r = await op.post(
                    "/v1/members",
                    json={
                        "name": "Outsider Trading",
                        "roles": ["supplier"],
                        "kyc_expires_at": KYC_UNTIL,
                    },
                    headers=Stack.idem(),
                )
                assert r.status_code == 201, r.text
                body = r.json()
            yield Demo(stack, story, body["api_key"], body["address"])
        finally:
            await story.close()


def csrf_field(page: str) -> str:
    """The ``csrf_token`` hidden field of a console page's form."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "no csrf_token field"
    return html.unescape(found.group(1))


async def signed_in(demo: Demo, key: str) -> httpx.AsyncClient:
    """A browser-like client (cookies kept, redirects not followed) signed in with ``key``."""
    http = httpx.AsyncClient(base_url=demo.stack.base_url, timeout=60.0)
    form = await http.get("/console/sign-in")
    assert form.status_code == 200, form.text
    r = await http.post(
        "/console/sign-in",
        data={"api_key": key, "csrf_token": csrf_field(form.text)},
    )
    assert r.status_code == 303, r.text
    return http
