"""The client against the real platform (anvil, the deployed suite, ``tierflow index`` and
``tierflow serve`` as processes): onboarding, invoice → payable → split → financing quote,
apply and approve → settlement through the typed methods; pagination; problems mapped to the
exception of their class; a retry after a lost answer reusing the write's key."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from bench.stack import Stack
from client import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    TierflowClient,
    Unauthorized,
)
from client.models import (
    FinancingWrite,
    InvoiceWrite,
    MemberCreated,
    PayableWrite,
    SettlementsWrite,
    TransferWrite,
)
from ledger.anvil import rpc_call
from tests.support.client import DAY, KYC_UNTIL, RATE_BPS, chain_time


def advance_time(stack: Stack, seconds: int) -> None:
    rpc_call(stack.rpc_url, "evm_increaseTime", [seconds])
    rpc_call(stack.rpc_url, "evm_mine")


@dataclass
class Party:
    name: str
    address: str
    api_key: str
    tf: TierflowClient


@dataclass
class Platform:
    stack: Stack
    operator: TierflowClient
    parties: dict[str, Party] = field(default_factory=dict)

    def client(self, api_key: str, **options: Any) -> TierflowClient:
        return TierflowClient(self.stack.base_url, api_key, **options)

    async def party(self, name: str, roles: list[str]) -> Party:
        found = self.parties.get(name)
        if found is not None:
            return found
        made = await self.operator.members.create(name, roles, KYC_UNTIL)
        assert isinstance(made, MemberCreated)
        assert made.api_key is not None  # shown once, on creation
        party = Party(name, made.address, made.api_key, self.client(made.api_key))
        self.parties[name] = party
        return party

    async def invoice(self, seller: Party, buyer: Party, amount: int, **over: Any) -> InvoiceWrite:
        args: dict[str, Any] = {
            "buyer": buyer.address,
            "seller_tax_id": "91310000MA1FL0XX1X",
            "number": uuid.uuid4().hex[:12],
            "amount": amount,
            "issue_date": datetime.fromtimestamp(chain_time(self.stack) - 3600, UTC),
            "document_sha256": os.urandom(32).hex(),
            **over,
        }
        return await seller.tf.invoices.register(**args)

    async def close(self) -> None:
        await self.operator.aclose()
        for party in self.parties.values():
            await party.tf.aclose()


@pytest.fixture(scope="module")
async def platform(stack: Stack) -> AsyncIterator[Platform]:
    made = Platform(stack, TierflowClient(stack.base_url, stack.operator_key))
    try:
        yield made
    finally:
        await made.close()


async def test_the_supply_chain_path_through_typed_methods(platform: Platform) -> None:
    op = platform.operator
    core = await platform.party("core", ["core_enterprise"])
    supplier = await platform.party("supplier", ["supplier"])
    tier2 = await platform.party("tier2", ["supplier"])
    bank = await platform.party("bank", ["financier"])

    member = await op.members.get(core.address)
    assert member.roles == ["core_enterprise"]
    assert member.status == "active"
    limit = await op.members.set_program_limit(core.address, 10**12)
    assert (limit.obligor, limit.program_limit) == (core.address, 10**12)
    line = await bank.tf.credit_lines.set(core.address, 10**11, registration_no="ZD-2026-01")
    assert line.limit == 10**11
    assert [c.obligor async for c in bank.tf.credit_lines.list()] == [core.address]

    face = 1_000_000_00
    invoice = await platform.invoice(supplier, core, face)
    assert isinstance(invoice, InvoiceWrite)
    assert invoice.status == "registered"
    assert invoice.tx_hash.startswith("0x")
    confirmed = await core.tf.invoices.confirm(invoice.id)
    assert confirmed.status == "confirmed"

    due = chain_time(platform.stack) + 30 * DAY
    payable = await core.tf.payables.issue(
        supplier=supplier.address, face_value=face, due_date=due, invoice_ids=[invoice.id]
    )
    assert isinstance(payable, PayableWrite)
    assert (payable.obligor, payable.supplier, payable.status) == (
        core.address,
        supplier.address,
        "issued",
    )
    assert int(payable.due_date.timestamp()) == due

    split = await supplier.tf.claims.transfer(
        payable.root_claim_id, to=tier2.address, amount=400_000_00
    )
    assert isinstance(split, TransferWrite)
    assert split.kind == "split"
    assert (split.claim.holder, split.claim.amount, split.claim.parent_id) == (
        tier2.address,
        400_000_00,
        payable.root_claim_id,
    )
    assert split.source.amount == 600_000_00

    quote = await tier2.tf.financing.quote(
        claim_id=split.claim_id, amount=300_000_00, financier=bank.address, annual_rate_bps=RATE_BPS
    )
    assert quote.advance == quote.amount - quote.discount - quote.fees
    applied = await tier2.tf.financing.apply(
        claim_id=split.claim_id, financier=bank.address, amount=300_000_00
    )
    assert isinstance(applied, FinancingWrite)
    assert applied.status == "applied"
    assert (await tier2.tf.claims.get(split.claim_id)).locked_amount == 300_000_00
    pending = [f.id async for f in bank.tf.financing.list(role="financier", status="applied")]
    assert applied.id in pending

    approved = await bank.tf.financing.approve(
        applied.id,
        advance=quote.advance,
        discount=quote.discount,
        fees=quote.fees,
        annual_rate_bps=RATE_BPS,
        disbursement_ref="BANK-TX-1",
    )
    assert approved.status == "approved"
    assert approved.registration_no == f"ZD-2026-01-{applied.id}"  # its own, under the programme
    assert approved.disbursement_ref == "0x" + hashlib.sha256(b"BANK-TX-1").hexdigest()
    assert approved.financed_claim_id is not None
    financed = await bank.tf.claims.get(approved.financed_claim_id)
    assert (financed.holder, financed.amount, financed.financed) == (bank.address, 300_000_00, True)

    tree = await core.tf.payables.tree(payable.id)
    assert tree.root.id == payable.root_claim_id
    assert tree.node_count == 3
    held = {n.holder: n.amount for n in tree.root.children}
    assert held == {tier2.address: 100_000_00}
    assert {n.holder for n in tree.root.children[0].children} == {bank.address}

    history = [e.event async for e in tier2.tf.claims.history(split.claim_id)]
    assert history[0] == "ClaimSplit"

    advance_time(platform.stack, 30 * DAY + 60)
    live = [c async for c in core.tf.claims.list(payable_id=payable.id) if c.status != "settled"]
    assert sum(c.amount for c in live) == face
    settled = await core.tf.payables.settle(payable.id, [(c.id, f"PAY-{c.id}") for c in live])
    assert isinstance(settled, SettlementsWrite)
    assert settled.payable_settled is True
    assert settled.payable.status == "settled"
    assert {s.holder for s in settled.settlements} == {
        supplier.address,
        tier2.address,
        bank.address,
    }
    assert (await supplier.tf.payables.get(payable.id)).status == "settled"

    events = [e.event async for e in core.tf.audit.events(payable_id=payable.id)]
    assert "PayableIssued" in events
    assert events[-1] == "PayableSettled"


async def test_lists_page_through_next_cursor(platform: Platform) -> None:
    core = await platform.party("core", ["core_enterprise"])
    seller = await platform.party("pager", ["supplier"])
    made = [(await platform.invoice(seller, core, 100 + n)).id for n in range(5)]

    pages = []
    page = await seller.tf.invoices.page(role="seller", limit=2)
    pages.append(page)
    while page.next_cursor is not None:
        page = await seller.tf.invoices.page(role="seller", limit=2, cursor=page.next_cursor)
        pages.append(page)
    assert [len(p.items) for p in pages][:3] == [2, 2, 1]
    listed = [i.id async for i in seller.tf.invoices.list(role="seller", limit=2)]
    assert sorted(listed) == sorted(made)
    assert [i.id for p in pages for i in p.items] == listed

    everyone = [m.address async for m in platform.operator.members.list(limit=1)]
    assert seller.address in everyone
    assert len(everyone) == len(set(everyone))
    text = await seller.tf.invoices.export_csv(role="seller")
    assert text.count("\r\n") == 1 + 5


async def test_problems_are_raised_as_their_class(platform: Platform) -> None:
    core = await platform.party("core", ["core_enterprise"])
    supplier = await platform.party("supplier", ["supplier"])

    with pytest.raises(NotFound) as missing:
        await supplier.tf.claims.get(999_999)
    assert missing.value.code == "claim_not_found"

    with pytest.raises(Forbidden) as forbidden:
        await supplier.tf.payables.issue(
            supplier=supplier.address, face_value=1, due_date=10**10, invoice_ids=["0x" + "00" * 32]
        )
    assert forbidden.value.code == "role_missing"

    async with platform.client("tf_000000000000_not-a-key") as stranger:
        with pytest.raises(Unauthorized):
            await stranger.members.get(core.address)

    with pytest.raises(Invalid) as invalid:
        await platform.invoice(supplier, core, 0)
    assert invalid.value.status == 422
    assert any(e["loc"][-1] == "amount" for e in invalid.value.errors)

    number = uuid.uuid4().hex[:12]
    await platform.invoice(supplier, core, 500, number=number)
    with pytest.raises(Conflict) as duplicate:
        await platform.invoice(supplier, core, 500, number=number)
    assert duplicate.value.code == "invoice_duplicate"


class LoseFirstAnswer(httpx.AsyncBaseTransport):
    """Forwards every request to the server, but loses the answer to the first POST after
    the server has processed it (a connection dropped on the way back)."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.posts: list[tuple[str, str]] = []
        self.replayed: list[str | None] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method != "POST":
            return response
        self.posts.append((request.url.path, request.headers["Idempotency-Key"]))
        await response.aread()
        self.replayed.append(response.headers.get("Idempotent-Replayed"))
        if len(self.posts) == 1:
            await response.aclose()
            raise httpx.ReadError("connection reset after the server answered", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_lost_answer_is_retried_under_the_same_key_and_replayed(
    platform: Platform,
) -> None:
    core = await platform.party("core", ["core_enterprise"])
    supplier = await platform.party("supplier", ["supplier"])
    transport = LoseFirstAnswer()
    async with platform.client(supplier.api_key, transport=transport) as tf:
        number = uuid.uuid4().hex[:12]
        args: dict[str, Any] = {
            "buyer": core.address,
            "seller_tax_id": "91310000MA1FL0XX1X",
            "number": number,
            "amount": 777,
            "issue_date": chain_time(platform.stack) - 3600,
            "document_sha256": os.urandom(32).hex(),
        }
        made = await tf.invoices.register(**args)
        # Not 409 invoice_duplicate: the retry was answered from the first execution.
        assert made.status == "registered"
        assert made.amount == 777
        assert len(transport.posts) == 2
        assert transport.posts[0] == transport.posts[1]
        assert transport.replayed == [None, "true"]

        # The same key with the same body is the same answer; with another body, refused.
        again = await tf.invoices.register(**args, idempotency_key=transport.posts[0][1])
        assert again.tx_hash == made.tx_hash
        with pytest.raises(Invalid) as reused:
            await tf.invoices.register(
                **{**args, "amount": 778}, idempotency_key=transport.posts[0][1]
            )
        assert reused.value.code == "idempotency_key_reused"
    # One invoice of that number exists, registered once.
    mine = [i async for i in supplier.tf.invoices.list(role="seller") if i.number == number]
    assert len(mine) == 1


async def test_system_audit_and_key_resources(platform: Platform) -> None:
    auditor = await platform.party("auditor", ["auditor"])
    supplier = await platform.party("supplier", ["supplier"])
    health = await auditor.tf.health()
    assert health.status == "ok"
    deployment = await auditor.tf.deployment()
    assert deployment.chain_id == health.chain_id
    assert {"MemberRegistry", "ClaimLedger", "FinancingDesk"} <= set(deployment.contracts)
    trusted = await auditor.tf.trusted_deployment()
    assert trusted.contracts["ClaimLedger"] == deployment.contracts["ClaimLedger"].address

    reconciliation = await auditor.tf.audit.reconciliation()
    assert reconciliation.ok, reconciliation.differences
    verification = await auditor.tf.audit.verify_log()
    assert verification.ok
    records = [r async for r in auditor.tf.audit.log(method="POST", limit=50)]
    assert records
    assert all(r.method == "POST" for r in records)
    exposure = [e async for e in auditor.tf.audit.exposure()]
    assert all(e.financed >= 0 for e in exposure)

    created = await supplier.tf.members.create_api_key(supplier.address, "ci")
    assert created.api_key is not None
    assert created.api_key.startswith("tf_")
    keys = await supplier.tf.members.api_keys(supplier.address)
    assert created.id in {k.id for k in keys}
    revoked = await supplier.tf.members.revoke_api_key(supplier.address, created.id)
    assert revoked.revoked_at is not None
    async with platform.client(created.api_key) as gone:
        with pytest.raises(Unauthorized):
            await gone.members.get(supplier.address)
