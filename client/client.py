"""The typed client of Tierflow's HTTP API (SPEC §4): :class:`TierflowClient`.

::

    async with TierflowClient("https://tierflow.example", api_key) as tf:
        invoice = await tf.invoices.register(buyer=core, seller_tax_id="9131…", number="1",
                                             amount=1_000_000, issue_date=now,
                                             document_sha256=sha)
        async for claim in tf.claims.list(holder=me):
            ...

Resources hang off the client by name (``members``, ``invoices``, ``payables``, ``claims``,
``financing``, ``credit_lines``, ``financing_policy``, ``audit``, ``intents``, ``approvals``,
``webhooks``); ``list`` methods are async iterators over every page, ``page`` methods answer one
:class:`~client.models.Page`. Every write takes an optional ``idempotency_key`` (one is made
otherwise) and answers the model of what it changed, with ``tx_hash`` and ``block_number``.
"""

from __future__ import annotations

import builtins
import functools
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Literal

from client._base import BaseClient, ConfirmHook, M
from client.intents import Intent
from client.models import (
    ApiKey,
    ApiKeyCreated,
    AuditRecord,
    AuditVerification,
    Claim,
    ClaimEvent,
    ClaimWrite,
    CreditLine,
    CreditLineWrite,
    Deployment,
    Event,
    Exposure,
    Financing,
    FinancingWrite,
    Health,
    Invoice,
    InvoiceWrite,
    Member,
    MemberCreated,
    MemberWrite,
    OrganisationUser,
    OrganisationUserCreated,
    Page,
    Payable,
    PayableOverdueWrite,
    PayableTree,
    PayableWrite,
    Policy,
    ProgramLimit,
    Quote,
    Reconciliation,
    SettlementsWrite,
    TransferWrite,
    Webhook,
    WebhookCreated,
    WebhookDelivery,
)

__all__ = ["TierflowClient"]

Time = datetime | int
"""A time: an aware ``datetime`` (naive means UTC) or UNIX seconds."""


def _given(**fields: Any) -> dict[str, Any]:
    """The fields the caller gave: the API refuses unknown ones and reads absent as default."""
    return {k: v for k, v in fields.items() if v is not None}


class _Resource:
    def __init__(self, client: BaseClient) -> None:
        self._c = client


class Members(_Resource):
    """``/v1/members``: the directory, onboarding (operator), API keys, organisation users."""

    async def create(
        self,
        name: str,
        roles: Sequence[str],
        kyc_expires_at: Time,
        *,
        address: str | None = None,
        idempotency_key: str | None = None,
    ) -> MemberCreated:
        """Onboard a member (operator). With ``address`` it is ``self`` custody: the member
        holds that account's key and the platform keeps none."""
        body = _given(name=name, roles=list(roles), kyc_expires_at=kyc_expires_at, address=address)
        return await self._c._write(
            "POST", "/v1/members", MemberCreated, body, idempotency_key=idempotency_key
        )

    async def page(
        self,
        *,
        role: str | None = None,
        status: str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> Page[Member]:
        params = {"role": role, "status": status}
        return await self._c._page("/v1/members", Member, params, cursor=cursor, limit=limit)

    def list(
        self, *, role: str | None = None, status: str | None = None, limit: int | None = None
    ) -> AsyncIterator[Member]:
        """Every member, in address order."""
        return self._c._iterate(
            "/v1/members", Member, {"role": role, "status": status}, limit=limit
        )

    async def get(self, address: str) -> Member:
        return await self._c._get(f"/v1/members/{address}", Member)

    async def suspend(
        self, address: str, reason: str, *, idempotency_key: str | None = None
    ) -> MemberWrite:
        return await self._c._write(
            "POST",
            f"/v1/members/{address}/suspend",
            MemberWrite,
            {"reason": reason},
            idempotency_key=idempotency_key,
        )

    async def reinstate(self, address: str, *, idempotency_key: str | None = None) -> MemberWrite:
        return await self._c._write(
            "POST", f"/v1/members/{address}/reinstate", MemberWrite, idempotency_key=idempotency_key
        )

    async def renew_kyc(
        self, address: str, kyc_expires_at: Time, *, idempotency_key: str | None = None
    ) -> MemberWrite:
        return await self._c._write(
            "POST",
            f"/v1/members/{address}/kyc",
            MemberWrite,
            {"kyc_expires_at": kyc_expires_at},
            idempotency_key=idempotency_key,
        )

    async def set_program_limit(
        self, address: str, program_limit: int, *, idempotency_key: str | None = None
    ) -> ProgramLimit:
        """A core enterprise's program limit (operator)."""
        return await self._c._write(
            "PUT",
            f"/v1/members/{address}/program-limit",
            ProgramLimit,
            {"program_limit": program_limit},
            idempotency_key=idempotency_key,
        )

    async def api_keys(self, address: str) -> builtins.list[ApiKey]:
        """A member's API keys (never their secrets)."""
        response = await self._c.request("GET", f"/v1/members/{address}/api-keys")
        body = self._c._json(response)
        return [self._c._model(ApiKey, item, response) for item in body.get("items", [])]

    async def create_api_key(
        self, address: str, label: str = "rotated", *, idempotency_key: str | None = None
    ) -> ApiKeyCreated:
        """A new API key (shown once in ``api_key``)."""
        return await self._c._write(
            "POST",
            f"/v1/members/{address}/api-keys",
            ApiKeyCreated,
            {"label": label},
            idempotency_key=idempotency_key,
        )

    async def revoke_api_key(self, address: str, key_id: str) -> ApiKey:
        response = await self._c.request("DELETE", f"/v1/members/{address}/api-keys/{key_id}")
        return self._c._model(ApiKey, self._c._json(response), response)

    def users(self, address: str, *, limit: int | None = None) -> AsyncIterator[OrganisationUser]:
        """The member's organisation users (SPEC §1)."""
        return self._c._iterate(f"/v1/members/{address}/users", OrganisationUser, limit=limit)

    async def create_user(
        self,
        address: str,
        name: str,
        role: Literal["maker", "checker"],
        *,
        idempotency_key: str | None = None,
    ) -> OrganisationUserCreated:
        """A user of the member with its own API key (shown once) and role."""
        return await self._c._write(
            "POST",
            f"/v1/members/{address}/users",
            OrganisationUserCreated,
            {"name": name, "role": role},
            idempotency_key=idempotency_key,
        )


class Invoices(_Resource):
    """``/v1/invoices``: the seller registers, the buyer confirms, the seller voids."""

    async def register(
        self,
        *,
        buyer: str,
        seller_tax_id: str,
        number: str,
        amount: int,
        issue_date: Time,
        document_sha256: str,
        invoice_code: str = "",
        idempotency_key: str | None = None,
    ) -> InvoiceWrite:
        body = {
            "buyer": buyer,
            "seller_tax_id": seller_tax_id,
            "invoice_code": invoice_code,
            "number": number,
            "amount": amount,
            "issue_date": issue_date,
            "document_sha256": document_sha256,
        }
        return await self._c._write(
            "POST", "/v1/invoices", InvoiceWrite, body, idempotency_key=idempotency_key
        )

    @staticmethod
    def _filters(status: str | None, role: str | None, counterparty: str | None) -> dict[str, Any]:
        return {"status": status, "role": role, "counterparty": counterparty}

    async def page(
        self,
        *,
        status: str | None = None,
        role: Literal["seller", "buyer"] | None = None,
        counterparty: str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> Page[Invoice]:
        params = self._filters(status, role, counterparty)
        return await self._c._page("/v1/invoices", Invoice, params, cursor=cursor, limit=limit)

    def list(
        self,
        *,
        status: str | None = None,
        role: Literal["seller", "buyer"] | None = None,
        counterparty: str | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[Invoice]:
        params = self._filters(status, role, counterparty)
        return self._c._iterate("/v1/invoices", Invoice, params, limit=limit)

    async def export_csv(
        self,
        *,
        status: str | None = None,
        role: Literal["seller", "buyer"] | None = None,
        counterparty: str | None = None,
    ) -> str:
        return await self._c._csv("/v1/invoices", self._filters(status, role, counterparty))

    async def get(self, invoice_id: str) -> Invoice:
        return await self._c._get(f"/v1/invoices/{invoice_id}", Invoice)

    async def confirm(self, invoice_id: str, *, idempotency_key: str | None = None) -> InvoiceWrite:
        """The buyer confirms the invoice is genuine."""
        return await self._c._write(
            "POST",
            f"/v1/invoices/{invoice_id}/confirm",
            InvoiceWrite,
            idempotency_key=idempotency_key,
        )

    async def void(self, invoice_id: str, *, idempotency_key: str | None = None) -> InvoiceWrite:
        return await self._c._write(
            "POST", f"/v1/invoices/{invoice_id}/void", InvoiceWrite, idempotency_key=idempotency_key
        )


class Payables(_Resource):
    """``/v1/payables``: issue, the lineage tree, settlement, overdue, the supplier's cancel."""

    async def issue(
        self,
        *,
        supplier: str,
        face_value: int,
        due_date: Time,
        invoice_ids: Sequence[str],
        clearing_agent: str | None = None,
        idempotency_key: str | None = None,
    ) -> PayableWrite:
        body = _given(
            supplier=supplier,
            face_value=face_value,
            due_date=due_date,
            invoice_ids=list(invoice_ids),
            clearing_agent=clearing_agent,
        )
        return await self._c._write(
            "POST", "/v1/payables", PayableWrite, body, idempotency_key=idempotency_key
        )

    async def page(
        self,
        *,
        status: str | None = None,
        obligor: str | None = None,
        supplier: str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> Page[Payable]:
        params = {"status": status, "obligor": obligor, "supplier": supplier}
        return await self._c._page("/v1/payables", Payable, params, cursor=cursor, limit=limit)

    def list(
        self,
        *,
        status: str | None = None,
        obligor: str | None = None,
        supplier: str | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[Payable]:
        params = {"status": status, "obligor": obligor, "supplier": supplier}
        return self._c._iterate("/v1/payables", Payable, params, limit=limit)

    async def export_csv(
        self, *, status: str | None = None, obligor: str | None = None, supplier: str | None = None
    ) -> str:
        params = {"status": status, "obligor": obligor, "supplier": supplier}
        return await self._c._csv("/v1/payables", params)

    async def get(self, payable_id: int) -> Payable:
        return await self._c._get(f"/v1/payables/{payable_id}", Payable)

    async def tree(
        self, payable_id: int, *, from_claim_id: int | None = None, levels: int | None = None
    ) -> PayableTree:
        """The lineage tree of the payable's pieces (from the root, or ``from_claim_id``)."""
        params = {"from_claim_id": from_claim_id, "levels": levels}
        return await self._c._get(f"/v1/payables/{payable_id}/tree", PayableTree, params)

    async def settle(
        self,
        payable_id: int,
        items: Sequence[tuple[int, str] | Mapping[str, Any]],
        *,
        idempotency_key: str | None = None,
    ) -> SettlementsWrite:
        """Record that the holders of the listed pieces were paid: ``(claim_id, payment_ref)``
        pairs (or ``{"claim_id": …, "payment_ref": …}``)."""
        listed = [
            dict(item)
            if isinstance(item, Mapping)
            else {"claim_id": item[0], "payment_ref": item[1]}
            for item in items
        ]
        return await self._c._write(
            "POST",
            f"/v1/payables/{payable_id}/settlements",
            SettlementsWrite,
            {"items": listed},
            idempotency_key=idempotency_key,
        )

    async def mark_overdue(
        self, payable_id: int, *, idempotency_key: str | None = None
    ) -> PayableOverdueWrite:
        return await self._c._write(
            "POST",
            f"/v1/payables/{payable_id}/overdue",
            PayableOverdueWrite,
            idempotency_key=idempotency_key,
        )

    async def cancel(self, payable_id: int, *, idempotency_key: str | None = None) -> PayableWrite:
        """The supplier declines an untouched payable."""
        return await self._c._write(
            "POST",
            f"/v1/payables/{payable_id}/cancel",
            PayableWrite,
            idempotency_key=idempotency_key,
        )


class Claims(_Resource):
    """``/v1/claims``: pieces, their transfers and splits, history, freezing."""

    async def page(
        self,
        *,
        payable_id: int | None = None,
        holder: str | None = None,
        status: str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> Page[Claim]:
        params = {"payable_id": payable_id, "holder": holder, "status": status}
        return await self._c._page("/v1/claims", Claim, params, cursor=cursor, limit=limit)

    def list(
        self,
        *,
        payable_id: int | None = None,
        holder: str | None = None,
        status: str | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[Claim]:
        params = {"payable_id": payable_id, "holder": holder, "status": status}
        return self._c._iterate("/v1/claims", Claim, params, limit=limit)

    async def export_csv(
        self, *, payable_id: int | None = None, holder: str | None = None, status: str | None = None
    ) -> str:
        params = {"payable_id": payable_id, "holder": holder, "status": status}
        return await self._c._csv("/v1/claims", params)

    async def get(self, claim_id: int) -> Claim:
        return await self._c._get(f"/v1/claims/{claim_id}", Claim)

    async def transfer(
        self,
        claim_id: int,
        *,
        to: str,
        amount: int,
        invoice_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> TransferWrite:
        """Pass ``amount`` of the piece to ``to``: all of it moves the piece, less splits."""
        body = _given(to=to, amount=amount, invoice_id=invoice_id)
        return await self._c._write(
            "POST",
            f"/v1/claims/{claim_id}/transfers",
            TransferWrite,
            body,
            idempotency_key=idempotency_key,
        )

    def history(self, claim_id: int, *, limit: int | None = None) -> AsyncIterator[ClaimEvent]:
        """The piece's chain events in order."""
        return self._c._iterate(f"/v1/claims/{claim_id}/history", ClaimEvent, limit=limit)

    async def freeze(
        self, claim_id: int, reason: str, *, idempotency_key: str | None = None
    ) -> ClaimWrite:
        """Freeze a piece on court order (operator)."""
        return await self._c._write(
            "POST",
            f"/v1/claims/{claim_id}/freeze",
            ClaimWrite,
            {"reason": reason},
            idempotency_key=idempotency_key,
        )

    async def unfreeze(self, claim_id: int, *, idempotency_key: str | None = None) -> ClaimWrite:
        return await self._c._write(
            "POST", f"/v1/claims/{claim_id}/unfreeze", ClaimWrite, idempotency_key=idempotency_key
        )


class FinancingRequests(_Resource):
    """``/v1/financing-requests`` and ``/v1/financing-quotes``."""

    async def quote(
        self,
        *,
        claim_id: int,
        amount: int,
        financier: str,
        annual_rate_bps: int | None = None,
        fee_bps: int | None = None,
    ) -> Quote:
        """The full cost before applying, and whether auto-approval would take it."""
        params = {
            "claim_id": claim_id,
            "amount": amount,
            "financier": financier,
            "annual_rate_bps": annual_rate_bps,
            "fee_bps": fee_bps,
        }
        return await self._c._get("/v1/financing-quotes", Quote, params)

    async def apply(
        self,
        *,
        claim_id: int,
        financier: str,
        amount: int,
        expires_at: Time | None = None,
        min_advance: int | None = None,
        recourse: bool | None = None,
        idempotency_key: str | None = None,
    ) -> FinancingWrite:
        """Apply for financing ``amount`` of a piece the caller holds (locked at once); with
        ``min_advance`` and ``recourse`` the terms the applicant commits to accept."""
        body = _given(
            claim_id=claim_id,
            financier=financier,
            amount=amount,
            expires_at=expires_at,
            min_advance=min_advance,
            recourse=recourse,
        )
        return await self._c._write(
            "POST", "/v1/financing-requests", FinancingWrite, body, idempotency_key=idempotency_key
        )

    async def page(
        self,
        *,
        status: str | None = None,
        role: Literal["applicant", "financier"] | None = None,
        claim_id: int | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> Page[Financing]:
        params = {"status": status, "role": role, "claim_id": claim_id}
        return await self._c._page(
            "/v1/financing-requests", Financing, params, cursor=cursor, limit=limit
        )

    def list(
        self,
        *,
        status: str | None = None,
        role: Literal["applicant", "financier"] | None = None,
        claim_id: int | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[Financing]:
        params = {"status": status, "role": role, "claim_id": claim_id}
        return self._c._iterate("/v1/financing-requests", Financing, params, limit=limit)

    async def get(self, financing_id: int) -> Financing:
        return await self._c._get(f"/v1/financing-requests/{financing_id}", Financing)

    async def approve(
        self,
        financing_id: int,
        *,
        annual_rate_bps: int | None = None,
        fees: int | None = None,
        advance: int | None = None,
        discount: int | None = None,
        term_days: int | None = None,
        recourse: bool | None = None,
        registration_no: str | None = None,
        disbursement_ref: str | None = None,
        idempotency_key: str | None = None,
    ) -> FinancingWrite:
        """Approve as the named financier: the terms (``advance`` with ``discount``, or
        ``annual_rate_bps``), fees, recourse, registry number, disbursement reference."""
        body = _given(
            annual_rate_bps=annual_rate_bps,
            fees=fees,
            advance=advance,
            discount=discount,
            term_days=term_days,
            recourse=recourse,
            registration_no=registration_no,
            disbursement_ref=disbursement_ref,
        )
        return await self._c._write(
            "POST",
            f"/v1/financing-requests/{financing_id}/approve",
            FinancingWrite,
            body,
            idempotency_key=idempotency_key,
        )

    async def reject(
        self, financing_id: int, reason: str, *, idempotency_key: str | None = None
    ) -> FinancingWrite:
        return await self._c._write(
            "POST",
            f"/v1/financing-requests/{financing_id}/reject",
            FinancingWrite,
            {"reason": reason},
            idempotency_key=idempotency_key,
        )

    async def withdraw(
        self, financing_id: int, *, idempotency_key: str | None = None
    ) -> FinancingWrite:
        return await self._c._write(
            "POST",
            f"/v1/financing-requests/{financing_id}/withdraw",
            FinancingWrite,
            idempotency_key=idempotency_key,
        )

    async def expire(
        self, financing_id: int, *, idempotency_key: str | None = None
    ) -> FinancingWrite:
        return await self._c._write(
            "POST",
            f"/v1/financing-requests/{financing_id}/expire",
            FinancingWrite,
            idempotency_key=idempotency_key,
        )


class CreditLines(_Resource):
    """``/v1/credit-lines``: a financier's exposure limit per obligor."""

    async def set(
        self,
        obligor: str,
        limit: int,
        *,
        registration_no: str | None = None,
        idempotency_key: str | None = None,
    ) -> CreditLineWrite:
        body = _given(limit=limit, registration_no=registration_no)
        return await self._c._write(
            "PUT",
            f"/v1/credit-lines/{obligor}",
            CreditLineWrite,
            body,
            idempotency_key=idempotency_key,
        )

    def list(
        self, *, financier: str | None = None, limit: int | None = None
    ) -> AsyncIterator[CreditLine]:
        return self._c._iterate(
            "/v1/credit-lines", CreditLine, {"financier": financier}, limit=limit
        )


class FinancingPolicy(_Resource):
    """``/v1/financing-policy``: a financier's auto-approval rules."""

    async def put(
        self,
        *,
        enabled: bool,
        max_amount: int,
        max_tenor_days: int,
        annual_rate_bps: int,
        fee_bps: int,
        allowed_obligors: Sequence[str] = (),
        recourse: bool = False,
        idempotency_key: str | None = None,
    ) -> Policy:
        body = {
            "enabled": enabled,
            "max_amount": max_amount,
            "max_tenor_days": max_tenor_days,
            "allowed_obligors": list(allowed_obligors),
            "annual_rate_bps": annual_rate_bps,
            "fee_bps": fee_bps,
            "recourse": recourse,
        }
        return await self._c._write(
            "PUT", "/v1/financing-policy", Policy, body, idempotency_key=idempotency_key
        )

    async def get(self, *, financier: str | None = None) -> Policy:
        return await self._c._get("/v1/financing-policy", Policy, {"financier": financier})


class Audit(_Resource):
    """``/v1/audit``: events, exposure, reconciliation, the audit log and its verification."""

    def events(
        self,
        *,
        event: str | None = None,
        contract: str | None = None,
        claim_id: int | None = None,
        payable_id: int | None = None,
        financing_id: int | None = None,
        invoice_id: str | None = None,
        account: str | None = None,
        from_block: int | None = None,
        to_block: int | None = None,
        from_time: datetime | None = None,
        to_time: datetime | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[Event]:
        """The contracts' events in chain order (members: about their own objects)."""
        params = {
            "event": event,
            "contract": contract,
            "claim_id": claim_id,
            "payable_id": payable_id,
            "financing_id": financing_id,
            "invoice_id": invoice_id,
            "account": account,
            "from_block": from_block,
            "to_block": to_block,
            "from_time": from_time,
            "to_time": to_time,
        }
        return self._c._iterate("/v1/audit/events", Event, params, limit=limit)

    def exposure(
        self, *, obligor: str | None = None, financier: str | None = None, limit: int | None = None
    ) -> AsyncIterator[Exposure]:
        params = {"obligor": obligor, "financier": financier}
        return self._c._iterate("/v1/audit/exposure", Exposure, params, limit=limit)

    async def reconciliation(self, *, limit: int | None = None) -> Reconciliation:
        """The mirror against the contracts at the checkpoint (auditors, operator)."""
        return await self._c._get("/v1/audit/reconciliation", Reconciliation, {"limit": limit})

    def log(
        self,
        *,
        member: str | None = None,
        method: str | None = None,
        status: int | None = None,
        code: str | None = None,
        from_time: datetime | None = None,
        to_time: datetime | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[AuditRecord]:
        """The API's audit log of mutating requests (auditors, operator)."""
        params = {
            "member": member,
            "method": method,
            "status": status,
            "code": code,
            "from_time": from_time,
            "to_time": to_time,
        }
        return self._c._iterate("/v1/audit/log", AuditRecord, params, limit=limit)

    async def verify_log(self) -> AuditVerification:
        return await self._c._get("/v1/audit/log/verify", AuditVerification)

    async def export_csv(self, what: Literal["events", "exposure", "log"], **filters: Any) -> str:
        """One of the audit lists as CSV, every page."""
        return await self._c._csv(f"/v1/audit/{what}", filters)


class Intents(_Resource):
    """``/v1/intents``: what a ``self`` member is asked to sign."""

    def list(self, *, status: str | None = None, limit: int | None = None) -> AsyncIterator[Intent]:
        """The caller's intents (open ones unless the API is asked otherwise)."""
        return self._c._iterate("/v1/intents", Intent, {"status": status}, limit=limit)

    async def get(self, intent_id: str) -> Intent:
        return await self._c._get(f"/v1/intents/{intent_id}", Intent)

    async def sign(
        self,
        intent: Intent | str,
        *,
        confirm: ConfirmHook | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Verify, confirm, sign and post (:meth:`TierflowClient.sign_intent`)."""
        return await self._c.sign_intent(intent, confirm=confirm, idempotency_key=idempotency_key)

    async def submit_signature(
        self,
        intent_id: str,
        *,
        signature: str | None = None,
        signed_tx: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Post a signature made elsewhere (``signature`` over typed data, or ``signed_tx``)
        as is: no check by this client. The answer of the write it completes."""
        if (signature is None) == (signed_tx is None):
            raise ValueError("give signature or signed_tx")
        body = _given(signature=signature, signed_tx=signed_tx)
        response = await self._c.request(
            "POST", f"/v1/intents/{intent_id}/signature", json=body, idempotency_key=idempotency_key
        )
        answer: dict[str, Any] = self._c._json(response)
        return answer


class Approvals(_Resource):
    """``/v1/approvals/{id}``: a checker decides a maker's write (dual control)."""

    async def decide(
        self,
        approval_id: str,
        *,
        approve: bool,
        reason: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        body = _given(decision="approve" if approve else "decline", reason=reason)
        response = await self._c.request(
            "POST", f"/v1/approvals/{approval_id}", json=body, idempotency_key=idempotency_key
        )
        answer: dict[str, Any] = self._c._json(response)
        return answer

    async def approve(
        self, approval_id: str, *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        return await self.decide(approval_id, approve=True, idempotency_key=idempotency_key)

    async def decline(
        self, approval_id: str, reason: str | None = None, *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        return await self.decide(
            approval_id, approve=False, reason=reason, idempotency_key=idempotency_key
        )


class Webhooks(_Resource):
    """``/v1/webhooks``: event deliveries to a member's own endpoint."""

    async def create(
        self, url: str, event_types: Sequence[str] = ("*",), *, idempotency_key: str | None = None
    ) -> WebhookCreated:
        """Register an endpoint; the signing ``secret`` is in the answer, once."""
        body = {"url": url, "event_types": list(event_types)}
        return await self._c._write(
            "POST", "/v1/webhooks", WebhookCreated, body, idempotency_key=idempotency_key
        )

    def list(self, *, limit: int | None = None) -> AsyncIterator[Webhook]:
        return self._c._iterate("/v1/webhooks", Webhook, limit=limit)

    async def delete(self, webhook_id: str) -> None:
        await self._c.request("DELETE", f"/v1/webhooks/{webhook_id}")

    def deliveries(
        self, webhook_id: str, *, limit: int | None = None
    ) -> AsyncIterator[WebhookDelivery]:
        """Every delivery attempt to the endpoint."""
        return self._c._iterate(
            f"/v1/webhooks/{webhook_id}/deliveries", WebhookDelivery, limit=limit
        )

    async def get(self, webhook_id: str) -> Webhook:
        """One endpoint: its ``status`` (``active``, or ``failing`` with ``failing_reason``)."""
        return await self._c._get(f"/v1/webhooks/{webhook_id}", Webhook)

    async def _queued(self, path: str) -> WebhookDelivery:
        # A queued delivery is answered 202: no intent to sign, no approval to wait for.
        response = await self._c.request("POST", path)
        return self._c._model(WebhookDelivery, self._c._json(response), response)

    async def redeliver(self, webhook_id: str, delivery_id: str) -> WebhookDelivery:
        """Send a delivery again (the same event id and body); reactivates a failing
        endpoint."""
        return await self._queued(f"/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver")

    async def ping(self, webhook_id: str) -> WebhookDelivery:
        """Queue a ``ping`` event to the endpoint."""
        return await self._queued(f"/v1/webhooks/{webhook_id}/ping")

    async def rotate_secret(self, webhook_id: str, overlap_s: int = 86_400) -> WebhookCreated:
        """A new signing secret (in the answer, once); the old one also signs for
        ``overlap_s`` (pass both to :func:`client.webhooks.verify_webhook` meanwhile)."""
        response = await self._c.request(
            "POST", f"/v1/webhooks/{webhook_id}/rotate-secret", json={"overlap_s": overlap_s}
        )
        return self._c._model(WebhookCreated, self._c._json(response), response)


class TierflowClient(BaseClient):
    """The async client of one member (one API key) of a Tierflow platform.

    ``signer`` signs the intents of a ``self`` member's writes, after checking them against
    ``deployment`` (pinned; otherwise ``GET /v1/deployment`` is read once) and asking
    ``confirm(action)`` (default: accept). A signature stays usable at most
    ``max_intent_validity_s`` past ``clock()`` (default: this machine's clock; a test that moves
    a local chain's clock passes one that reads the chain's). ``retry`` bounds the retries that
    reuse one ``Idempotency-Key``; ``transport`` is httpx's (tests pass a ``MockTransport``).
    """

    @functools.cached_property
    def members(self) -> Members:
        """Members, API keys, organisation users."""
        return Members(self)

    @functools.cached_property
    def invoices(self) -> Invoices:
        """Invoices."""
        return Invoices(self)

    @functools.cached_property
    def payables(self) -> Payables:
        """Payables, their trees and settlements."""
        return Payables(self)

    @functools.cached_property
    def claims(self) -> Claims:
        """Claim pieces, transfers, history."""
        return Claims(self)

    @functools.cached_property
    def financing(self) -> FinancingRequests:
        """Financing requests and quotes."""
        return FinancingRequests(self)

    @functools.cached_property
    def credit_lines(self) -> CreditLines:
        """A financier's credit lines."""
        return CreditLines(self)

    @functools.cached_property
    def financing_policy(self) -> FinancingPolicy:
        """A financier's auto-approval policy."""
        return FinancingPolicy(self)

    @functools.cached_property
    def audit(self) -> Audit:
        """Events, exposure, reconciliation, the audit log."""
        return Audit(self)

    @functools.cached_property
    def intents(self) -> Intents:
        """What a ``self`` member signs."""
        return Intents(self)

    @functools.cached_property
    def approvals(self) -> Approvals:
        """Dual control: a checker's decisions."""
        return Approvals(self)

    @functools.cached_property
    def webhooks(self) -> Webhooks:
        """Webhook endpoints and deliveries."""
        return Webhooks(self)

    async def __aenter__(self) -> TierflowClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def health(self) -> Health:
        """``GET /health``: ``ok``, ``degraded`` (reads served) or ``down`` (503:
        :class:`~client.Unavailable`), with its reasons."""
        return await self._get("/health", Health)

    async def deployment(self) -> Deployment:
        """``GET /v1/deployment``: the chain id and the contracts' addresses."""
        return await self._get("/v1/deployment", Deployment)

    async def get_model(self, path: str, model: type[M], **params: Any) -> M:
        """A read the typed methods do not cover yet, as ``model``."""
        return await self._get(path, model, params)
