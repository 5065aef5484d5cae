"""A small fake of the API's signing flow (SPEC §4 intents, dual control) for the client's
tests, served through ``httpx.MockTransport``: the API side of intents does not exist yet.

It answers a ``self`` member's transfer (``POST /v1/claims/{id}/transfers``) and a financier's
approval (``POST /v1/financing-requests/{id}/approve``) with ``202 awaiting_signature`` and an
intent it builds as the lead fixed it: EIP-712 ``ForwardRequest`` typed data for the
``TierflowForwarder`` domain, the call encoded with the ABI shipped in the client package
(independently of the client's own decoder), the digest made by eth-account. A test may
``tamper`` with each intent before it is sent. ``POST /v1/intents/{id}/signature`` recovers the
signer from the digest it made and refuses any other key, as the API will.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from eth_abi.abi import encode
from eth_account import Account
from eth_account._utils.legacy_transactions import serializable_unsigned_transaction_from_dict
from eth_account.messages import _hash_eip191_message, encode_typed_data
from eth_utils.abi import function_abi_to_4byte_selector, get_abi_input_types
from eth_utils.address import to_checksum_address

from backend.forwarding import DOMAIN, FORWARD_REQUEST

ABI_DIR = Path(__file__).resolve().parents[2] / "client" / "abi"
CHAIN_ID = 31337
ZERO32 = "0x" + "00" * 32


def random_address() -> str:
    return to_checksum_address("0x" + os.urandom(20).hex())


def calldata(contract: str, function: str, args: list[Any]) -> bytes:
    abi = json.loads((ABI_DIR / f"{contract}.json").read_text())
    entry = next(e for e in abi if e.get("type") == "function" and e.get("name") == function)
    return function_abi_to_4byte_selector(entry) + encode(get_abi_input_types(entry), args)


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def claim_body(claim_id: int, holder: str, amount: int) -> dict[str, Any]:
    return {
        "id": claim_id,
        "payable_id": 1,
        "parent_id": None,
        "depth": 0,
        "holder": holder,
        "obligor": None,
        "amount": amount,
        "locked_amount": 0,
        "available_amount": amount,
        "status": "active",
        "frozen": False,
        "financed": False,
        "due_date": iso(time.time() + 86400 * 30),
        "invoice_id": None,
        "created_block": 1,
    }


@dataclass
class FakeApi:
    """The fake server's state; ``transport`` is what the client is given."""

    member: str
    chain_id: int = CHAIN_ID
    contracts: dict[str, str] = field(
        default_factory=lambda: {
            name: random_address()
            for name in (
                "MemberRegistry",
                "InvoiceRegistry",
                "ClaimLedger",
                "FinancingDesk",
                "TierflowForwarder",
            )
        }
    )
    mode: str = "typed_data"  # or "unsigned_tx"
    dual_control: bool = False
    approved: bool = False
    tamper: Any = None  # callable(intent dict) -> None
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    digests: dict[str, bytes] = field(default_factory=dict)
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    signatures: list[dict[str, Any]] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)
    deployment_reads: int = 0
    nonce: int = 0
    on_request: Any = None  # callable(request): a test's observer
    clock_offset: int = 0  # the chain's clock ahead of this machine's (a moved local chain)
    stored: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)

    relay_s: float = 0.0  # how long a signature's answer takes (the relay mined and mirrored)
    relaying: int = 0  # signatures being answered now
    most_relaying: int = 0  # the most at once

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle_relaying if self.relay_s else self.handle)

    async def handle_relaying(self, request: httpx.Request) -> httpx.Response:
        """:meth:`handle`, a signature's answer after :attr:`relay_s` (an async client only)."""
        if request.method != "POST" or not request.url.path.endswith("/signature"):
            return self.handle(request)
        self.relaying += 1
        self.most_relaying = max(self.most_relaying, self.relaying)
        try:
            await asyncio.sleep(self.relay_s)
            return self.handle(request)
        finally:
            self.relaying -= 1

    # -- intents ------------------------------------------------------------------------------

    def make_intent(
        self, contract: str, function: str, args: dict[str, Any], values: list[Any], answer: Any
    ) -> dict[str, Any]:
        data = calldata(contract, function, values)
        deadline = int(time.time()) + self.clock_offset + 600
        intent_id = uuid.uuid4().hex
        self.nonce += 1
        intent: dict[str, Any] = {
            "id": intent_id,
            "status": "open",
            "member": self.member,
            "expires_at": iso(deadline),
            "action": {"contract": contract, "function": function, "args": args},
        }
        if self.mode == "typed_data":
            typed = {
                "types": copy.deepcopy({"EIP712Domain": DOMAIN, "ForwardRequest": FORWARD_REQUEST}),
                "primaryType": "ForwardRequest",
                "domain": {
                    "name": "TierflowForwarder",
                    "version": "1",
                    "chainId": self.chain_id,
                    "verifyingContract": self.contracts["TierflowForwarder"],
                },
                "message": {
                    "from": self.member,
                    "to": self.contracts[contract],
                    "value": 0,
                    "gas": 500_000,
                    "nonce": self.nonce,
                    "deadline": deadline,
                    "data": "0x" + data.hex(),
                },
            }
            digest: bytes = _hash_eip191_message(encode_typed_data(full_message=typed))
            intent["typed_data"] = typed
        else:
            tx: dict[str, Any] = {
                "type": 2,
                "chainId": self.chain_id,
                "nonce": self.nonce,
                "to": self.contracts[contract],
                "value": 0,
                "gas": 500_000,
                "maxFeePerGas": 0,
                "maxPriorityFeePerGas": 0,
                "data": "0x" + data.hex(),
            }
            digest = bytes(serializable_unsigned_transaction_from_dict(tx).hash())
            intent["unsigned_tx"] = {**tx, "from": self.member}
        intent["digest"] = "0x" + bytes(digest).hex()
        self.digests[intent_id] = bytes(digest)
        self.answers[intent_id] = answer
        if self.tamper is not None:
            self.tamper(intent)
        self.intents[intent_id] = intent
        return intent

    def transfer(self, claim_id: int, body: dict[str, Any]) -> dict[str, Any]:
        to, amount = to_checksum_address(body["to"]), int(body["amount"])
        invoice = body.get("invoice_id") or ZERO32
        args = {"fromId": claim_id, "to": to, "value": amount, "invoiceId": invoice}
        answer = {
            "tx_hash": "0x" + os.urandom(32).hex(),
            "block_number": 42,
            "kind": "split",
            "claim_id": claim_id + 100,
            "from_claim_id": claim_id,
            "to": to,
            "amount": amount,
            "claim": claim_body(claim_id + 100, to, amount),
            "source": claim_body(claim_id, self.member, 1_000_000 - amount),
        }
        values = [claim_id, to, amount, bytes.fromhex(invoice[2:])]
        return self.make_intent("ClaimLedger", "split", args, values, answer)

    def approve(self, financing_id: int, body: dict[str, Any]) -> dict[str, Any]:
        terms: dict[str, Any] = {
            "advance": int(body["advance"]),
            "discount": int(body["discount"]),
            "fees": int(body.get("fees", 0)),
            "annualRateBps": int(body.get("annual_rate_bps", 0)),
            "termDays": int(body.get("term_days", 30)),
            "recourse": bool(body.get("recourse", False)),
            "registrationNo": "0x" + b"ZD-1".ljust(32, b"\0").hex(),
            "disbursementRef": "0x" + os.urandom(32).hex(),
        }
        args = {"financingId": financing_id, "terms": terms}
        values = [
            financing_id,
            (
                terms["advance"],
                terms["discount"],
                terms["fees"],
                terms["annualRateBps"],
                terms["termDays"],
                terms["recourse"],
                bytes.fromhex(terms["registrationNo"][2:]),
                bytes.fromhex(terms["disbursementRef"][2:]),
            ),
        ]
        answer = {
            "tx_hash": "0x" + os.urandom(32).hex(),
            "block_number": 43,
            "id": financing_id,
            "claim_id": 1,
            "applicant": random_address(),
            "financier": self.member,
            "obligor": random_address(),
            "amount": terms["advance"] + terms["discount"] + terms["fees"],
            "status": "approved",
            "expires_at": iso(time.time() + 3600),
            "advance": terms["advance"],
            "discount": terms["discount"],
            "fees": terms["fees"],
            "annual_rate_bps": terms["annualRateBps"],
            "recourse": terms["recourse"],
            "registration_no": "ZD-1",
            "disbursement_ref": terms["disbursementRef"],
            "financed_claim_id": 9,
            "reason_hash": None,
            "auto_decision": None,
        }
        return self.make_intent("FinancingDesk", "approveFinancing", args, values, answer)

    # -- HTTP ---------------------------------------------------------------------------------

    @staticmethod
    def problem(status: int, code: str, detail: str) -> httpx.Response:
        body = {
            "type": "about:blank",
            "title": "",
            "status": status,
            "code": code,
            "detail": detail,
        }
        return httpx.Response(
            status, json=body, headers={"content-type": "application/problem+json"}
        )

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.on_request is not None:
            self.on_request(request)
        path = request.url.path
        parts = path.strip("/").split("/")
        if request.method == "GET" and path == "/v1/deployment":
            self.deployment_reads += 1
            contracts = {n: {"address": a, "start_block": 1} for n, a in self.contracts.items()}
            return httpx.Response(
                200, json={"chain_id": self.chain_id, "contracts": contracts, "start_block": 1}
            )
        if request.method == "GET" and path == "/v1/intents":
            items = [i for i in self.intents.values() if i["status"] == "open"]
            return httpx.Response(200, json={"items": items, "next_cursor": None})
        if request.method == "GET" and parts[:2] == ["v1", "intents"] and len(parts) == 3:
            found = self.intents.get(parts[2])
            if found is None:
                return self.problem(404, "intent_not_found", "no such intent")
            return httpx.Response(200, json=found)
        if (
            request.method == "POST"
            and parts[:2] == ["v1", "intents"]
            and parts[3:] == ["signature"]
        ):
            return self.signature(parts[2], json.loads(request.content))
        if (
            request.method == "POST"
            and parts[:2] == ["v1", "claims"]
            and parts[3:] == ["transfers"]
        ):
            return self.write(request, lambda body: self.transfer(int(parts[2]), body))
        if (
            request.method == "POST"
            and parts[:2] == ["v1", "financing-requests"]
            and parts[3:] == ["approve"]
        ):
            return self.write(request, lambda body: self.approve(int(parts[2]), body))
        return self.problem(404, "not_found", f"the fake has no {request.method} {path}")

    def write(self, request: httpx.Request, make: Any) -> httpx.Response:
        key = request.headers["Idempotency-Key"]
        if key in self.stored:
            status, body = self.stored[key]
            if status == 202 and body["status"] == "awaiting_approval" and self.approved:
                intent = make(json.loads(request.content))
                status, body = 202, {"status": "awaiting_signature", "intent": intent}
                self.stored[key] = (status, body)
            return httpx.Response(status, json=body, headers={"Idempotent-Replayed": "true"})
        if self.dual_control and not self.approved:
            body = {
                "status": "awaiting_approval",
                "approval": {"id": "appr-" + key[:8], "expires_at": iso(time.time() + 3600)},
            }
            self.stored[key] = (202, body)
            return httpx.Response(202, json=body)
        intent = make(json.loads(request.content))
        body = {"status": "awaiting_signature", "intent": intent}
        self.stored[key] = (202, body)
        return httpx.Response(202, json=body)

    def signature(self, intent_id: str, body: dict[str, Any]) -> httpx.Response:
        intent = self.intents.get(intent_id)
        if intent is None:
            return self.problem(404, "intent_not_found", "no such intent")
        self.signatures.append(body)
        if "signature" in body:
            signer = Account._recover_hash(
                self.digests[intent_id], signature=bytes.fromhex(body["signature"][2:])
            )
        else:
            signer = Account.recover_transaction(body["signed_tx"])
        if signer != self.member:
            return self.problem(422, "signature_invalid", f"signed by {signer}, not the member")
        intent["status"] = "signed"
        return httpx.Response(201, json=self.answers[intent_id])
