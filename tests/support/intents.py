"""A `self` member's writes in API tests: its intent signed with its own key (EIP-712 digest),
the write's answer after signing, and a payable issued to a `self` supplier."""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from tests.support.api import Api, Member, invoice_body


def sign(account: LocalAccount, intent: dict[str, Any]) -> str:
    signed = Account.unsafe_sign_hash(bytes.fromhex(intent["digest"][2:]), account.key)
    return "0x" + bytes(signed.signature).hex()


async def signed(member: Member, account: LocalAccount, answer: Any) -> Any:
    """The answer of a write, after signing its intent if it asks for one."""
    if answer.status_code != 202:
        return answer
    intent = answer.json()["intent"]
    return await member.post(
        f"/v1/intents/{intent['id']}/signature", {"signature": sign(account, intent)}
    )


async def issue_to_self(
    api: Api, core: Member, supplier: Member, account: LocalAccount, face: int
) -> int:
    """A payable of ``face`` from ``core`` to the self ``supplier``: the supplier registers
    its invoice by signing, the core confirms and issues; the root piece's id."""
    body = invoice_body(core, face, await api.chain_time() - 3600)
    invoice = await signed(supplier, account, await supplier.post("/v1/invoices", body))
    assert invoice.status_code == 201, invoice.text
    confirmed = await core.post(f"/v1/invoices/{invoice.json()['id']}/confirm")
    assert confirmed.status_code == 200, confirmed.text
    issued = await core.post(
        "/v1/payables",
        {
            "supplier": supplier.address,
            "face_value": face,
            "due_date": await api.chain_time() + 60 * 86_400,
            "invoice_ids": [invoice.json()["id"]],
        },
    )
    assert issued.status_code == 201, issued.text
    root: int = issued.json()["root_claim_id"]
    return root
