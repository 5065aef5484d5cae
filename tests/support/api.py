"""Speaking to a platform's HTTP API in tests: members made through it and the steps the API
test modules share (an invoice confirmed, a payable issued, a transfer, a problem checked).

- :class:`Api`: ``await api.member("core", ["core_enterprise"])`` onboards a member through
  ``POST /v1/members`` (once per name and module) and returns a :class:`Member` with its
  address, API key and an HTTP client; ``api.operator`` is the operator.

Amounts and times come from the tests themselves; this only saves typing.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import unicodedata
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

from bench.stack import Stack
from ledger.anvil import ANVIL_CHAIN_ID, rpc_call
from ledger.bindings import Suite
from ledger.deployment import load_deployment
from ledger.node import close_web3, make_web3


def iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


KYC_UNTIL = (datetime.now(UTC) + timedelta(days=3650)).isoformat()


DAY = 86_400


GRACE_DAYS = 7  # the local deployment's grace period (DeploymentParameters)

#: A test stack's API waits long for its mirror: the cores are shared, a write's answer waits.
MIRROR_WAIT_S = "120"
TEST_ENV = {"TIERFLOW_API_MIRROR_WAIT_S": MIRROR_WAIT_S}


@dataclass
class Member:
    name: str
    address: str
    key: str
    http: httpx.AsyncClient
    roles: list[str] = field(default_factory=list)

    async def post(self, path: str, body: Any = None, key: str | None = None) -> httpx.Response:
        """POST with a fresh (or the given) Idempotency-Key."""
        return await self.http.post(path, json=body, headers=Stack.idem(key))

    async def put(self, path: str, body: Any = None, key: str | None = None) -> httpx.Response:
        return await self.http.put(path, json=body, headers=Stack.idem(key))

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.http.get(path, params=params or None)


@dataclass
class Api:
    stack: Stack
    operator: Member
    members: dict[str, Member] = field(default_factory=dict)

    async def member(self, name: str, roles: list[str]) -> Member:
        """The member ``name``, onboarded through the API the first time it is asked for."""
        existing = self.members.get(name)
        if existing is not None:
            return existing
        r = await self.operator.post(
            "/v1/members", {"name": name, "roles": roles, "kyc_expires_at": KYC_UNTIL}
        )
        assert r.status_code == 201, r.text
        body = r.json()
        made = Member(
            name, body["address"], body["api_key"], self.stack.client(body["api_key"]), roles
        )
        self.members[name] = made
        return made

    def advance_time(self, seconds: int) -> None:
        """Move the chain's clock forward and mine a block (the indexer follows)."""
        rpc_call(self.stack.rpc_url, "evm_increaseTime", [seconds])
        rpc_call(self.stack.rpc_url, "evm_mine")

    async def chain_time(self) -> int:
        block = rpc_call(self.stack.rpc_url, "eth_getBlockByNumber", ["latest", False])
        return int(block["timestamp"], 16)

    async def close(self) -> None:
        for m in (self.operator, *self.members.values()):
            await m.http.aclose()


async def make_api(stack: Stack) -> Api:
    operator = Member("operator", "", stack.operator_key, stack.client(stack.operator_key))
    return Api(stack, operator)


@pytest.fixture(scope="module")
async def api(stack: Stack) -> AsyncIterator[Api]:
    """An :class:`Api` for the module's ``stack`` fixture, closed with the module. A conftest
    that imports this fixture gives it to every module below it."""
    made = await make_api(stack)
    try:
        yield made
    finally:
        await made.close()


def unique(prefix: str = "") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def normalised(identifier: str) -> str:
    """The documented normalisation, written out again independently of the service."""
    folded = unicodedata.normalize("NFKC", identifier).strip().upper()
    for dash in "-‐‑‒–—―−":
        folded = folded.replace(dash, "")
    return "".join(folded.split())


def expected_id(tax_id: str, code: str, number: str) -> str:
    parts = [normalised(tax_id), normalised(code), normalised(number)]
    return "0x" + keccak(abi_encode(["string", "string", "string"], parts)).hex()


def invoice_body(buyer: Member, amount: int, issue_date: int, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "buyer": buyer.address,
        "seller_tax_id": "91310000" + unique().upper()[:10],
        "invoice_code": "031001900111",
        "number": unique("N-"),
        "amount": amount,
        "issue_date": issue_date,
        "document_sha256": secrets.token_hex(32),
    }
    body.update(over)
    return body


async def register(api: Api, seller: Member, buyer: Member, amount: int, **over: Any) -> Any:
    """Register an invoice from ``seller`` to ``buyer`` issued an hour ago (chain time)."""
    issued = await api.chain_time() - 3600
    return await seller.post("/v1/invoices", invoice_body(buyer, amount, issued, **over))


async def confirmed_invoice(api: Api, seller: Member, buyer: Member, amount: int) -> str:
    """A Confirmed invoice from ``seller`` to ``buyer``: its id."""
    r = await register(api, seller, buyer, amount)
    assert r.status_code == 201, r.text
    invoice_id: str = r.json()["id"]
    c = await buyer.post(f"/v1/invoices/{invoice_id}/confirm")
    assert c.status_code == 200, c.text
    return invoice_id


async def post_json(member: Member, path: str, body: Any) -> httpx.Response:
    """POST ``body`` as ASCII JSON (escapes kept: a lone surrogate travels as ``\\ud800``,
    which httpx's own UTF-8 encoding cannot send)."""
    headers = {**Stack.idem(), "Content-Type": "application/json"}
    return await member.http.post(path, content=json.dumps(body), headers=headers)


def problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["code"] == code, body
    return body


async def core_with_limit(api: Api, name: str, limit: int) -> Member:
    core = await api.member(name, ["core_enterprise"])
    r = await api.operator.put(
        f"/v1/members/{core.address}/program-limit", {"program_limit": limit}
    )
    assert r.status_code == 200, r.text
    return core


async def issue(
    api: Api,
    core: Member,
    supplier: Member,
    face: int,
    due_in_s: int = 30 * DAY,
    **over: Any,
) -> dict[str, Any]:
    """Issue a payable of ``face`` against one fresh confirmed invoice of the same amount."""
    invoice_id = await confirmed_invoice(api, supplier, core, face)
    body = {
        "supplier": supplier.address,
        "face_value": face,
        "due_date": await api.chain_time() + due_in_s,
        "invoice_ids": [invoice_id],
        **over,
    }
    r = await core.post("/v1/payables", body)
    assert r.status_code == 201, r.text
    made: dict[str, Any] = r.json()
    return made


async def transfer(sender: Member, claim_id: int, to: Member, amount: int, **over: Any) -> Any:
    return await sender.post(
        f"/v1/claims/{claim_id}/transfers", {"to": to.address, "amount": amount, **over}
    )


@dataclass
class Ledger:
    """The contracts' views (the source of truth the API's answers are checked against) and
    payables issued through the invoice and payable routes."""

    suite: Suite
    api: Api

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, stack: Stack, api: Api) -> AsyncIterator[Ledger]:
        deployment = load_deployment(ANVIL_CHAIN_ID, stack.data_dir / "deployments")
        assert deployment is not None
        w3 = make_web3(stack.rpc_url)
        try:
            yield cls(Suite(w3, deployment), api)
        finally:
            await close_web3(w3)

    async def payable(
        self, core: Member, supplier: Member, face: int, due_in_s: int = 60 * DAY
    ) -> tuple[int, int]:
        """Issue a payable of ``face`` from ``core`` to ``supplier`` through the invoice and
        payable routes: its root piece's id and its due date."""
        now = await self.api.chain_time()
        r = await supplier.post(
            "/v1/invoices",
            {
                "buyer": core.address,
                "seller_tax_id": "91310000MA1FL0XX1X",
                "number": os.urandom(8).hex(),
                "amount": face,
                "issue_date": iso(now - 60),
                "document_sha256": os.urandom(32).hex(),
            },
        )
        assert r.status_code == 201, r.text
        invoice_id = r.json()["id"]
        r = await core.post(f"/v1/invoices/{invoice_id}/confirm")
        assert r.status_code == 200, r.text
        due = now + due_in_s
        r = await core.post(
            "/v1/payables",
            {
                "supplier": supplier.address,
                "face_value": face,
                "due_date": iso(due),
                "invoice_ids": [invoice_id],
            },
        )
        assert r.status_code == 201, r.text
        return int(r.json()["root_claim_id"]), due
