"""A small business scenario made through the HTTP API, for the API's cross-cutting tests.

:func:`build` onboards the cast (a core enterprise, suppliers A and B, a financier, a clearing
agent, an auditor) and makes, with whatever routes the server has at the time (it reads its
OpenAPI), one object of each kind with known parties:

- an invoice from A (seller) to the core (buyer), confirmed;
- a payable of the core (obligor) to A, naming the clearing agent, backed by that invoice;
- its root claim piece, held by A;
- a financing request by A to the financier over part of that piece (left pending).

B is a supplier that is party to none of them. An object whose routes are missing is None.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.support.api import Api, Member

DAY = 86_400
FACE = 1_000_000


@dataclass
class Scenario:
    api: Api
    core: Member
    a: Member
    b: Member
    financier: Member
    agent: Member
    auditor: Member
    invoice_id: str | None = None
    payable_id: int | None = None
    claim_id: int | None = None
    financing_id: int | None = None
    paths: set[str] = field(default_factory=set)

    @property
    def operator(self) -> Member:
        return self.api.operator


def _ok(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, f"{r.request.method} {r.request.url.path}: {r.text}"
    body: dict[str, Any] = r.json()
    return body


async def cast(api: Api, prefix: str = "") -> Scenario:
    """The members only (each onboarded through ``POST /v1/members``)."""
    return Scenario(
        api=api,
        core=await api.member(f"{prefix}core", ["core_enterprise"]),
        a=await api.member(f"{prefix}supplier-a", ["supplier"]),
        b=await api.member(f"{prefix}supplier-b", ["supplier"]),
        financier=await api.member(f"{prefix}bank", ["financier"]),
        agent=await api.member(f"{prefix}clearing", ["clearing_agent"]),
        auditor=await api.member(f"{prefix}auditor", ["auditor"]),
    )


async def build(api: Api, prefix: str = "") -> Scenario:
    """The cast and one object of each kind (see the module docstring)."""
    s = await cast(api, prefix)
    r = await api.operator.get("/openapi.json")
    s.paths = set(_ok(r, 200)["paths"])
    now = await api.chain_time()
    if "/v1/invoices" in s.paths:
        body = {
            "buyer": s.core.address,
            "seller_tax_id": "91310000" + uuid.uuid4().hex[:10].upper(),
            "invoice_code": "031001900111",
            "number": "N-" + uuid.uuid4().hex[:10],
            "amount": FACE,
            "issue_date": now - 3600,
            "document_sha256": secrets.token_hex(32),
        }
        s.invoice_id = _ok(await s.a.post("/v1/invoices", body), 201)["id"]
        _ok(await s.core.post(f"/v1/invoices/{s.invoice_id}/confirm"), 200)
    if s.invoice_id is not None and "/v1/payables" in s.paths:
        limit = {"program_limit": 10 * FACE}
        _ok(await api.operator.put(f"/v1/members/{s.core.address}/program-limit", limit), 200)
        payable = _ok(
            await s.core.post(
                "/v1/payables",
                {
                    "supplier": s.a.address,
                    "face_value": FACE,
                    "due_date": now + 60 * DAY,
                    "invoice_ids": [s.invoice_id],
                    "clearing_agent": s.agent.address,
                },
            ),
            201,
        )
        s.payable_id = int(payable["id"])
        s.claim_id = int(payable["root_claim_id"])
    if s.claim_id is not None and "/v1/financing-requests" in s.paths:
        applied = _ok(
            await s.a.post(
                "/v1/financing-requests",
                {"claim_id": s.claim_id, "financier": s.financier.address, "amount": FACE // 4},
            ),
            201,
        )
        s.financing_id = int(applied["id"])
    return s
