"""Self custody through the client against the real platform (issue 10): a ``self`` tier-2
supplier whose key is a key file and a ``self`` bank whose key lives in SoftHSM2 act through
:class:`~client.TierflowClient` with their signers; every write of theirs comes back as an
intent, which the client verifies against the deployment, decodes and signs, and the answer
is the write's own. The chain's records name the members' own addresses (not the relayer's);
the platform's database holds no key for them; the tree shows them as ``self``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from eth_account import Account
from sqlalchemy import select

from backend.models import KeystoreEntry
from bench.stack import Stack
from client import TierflowClient
from client.intents import DecodedAction
from client.signing import KeyfileSigner, Pkcs11Signer, generate_pkcs11_key
from client.softhsm import SoftHsmToken
from db.engine import create_engine, sessions
from ledger.anvil import rpc_call
from tests.support.hsm import key_label

DAY = 86_400
KYC_UNTIL = datetime.now(UTC) + timedelta(days=3650)
RATE_BPS = 600


def chain_time(stack: Stack) -> int:
    block = rpc_call(stack.rpc_url, "eth_getBlockByNumber", ["latest", False])
    return int(block["timestamp"], 16)


async def keys_held(stack: Stack, addresses: list[str]) -> list[str]:
    engine = create_engine(stack.database_url)
    try:
        async with sessions(engine)() as session:
            rows = await session.execute(
                select(KeystoreEntry.address).where(KeystoreEntry.address.in_(addresses))
            )
            return list(rows.scalars())
    finally:
        await engine.dispose()


async def test_self_supplier_and_self_bank_sign_their_own_actions(
    stack: Stack, hsm: SoftHsmToken
) -> None:
    seen: list[DecodedAction] = []

    def confirm(action: DecodedAction) -> bool:
        seen.append(action)
        return True

    operator = TierflowClient(stack.base_url, stack.operator_key)
    label = key_label("bank")
    bank_address = generate_pkcs11_key(hsm.label, hsm.pin, label, module=hsm.module)
    clients: list[TierflowClient] = [operator]
    with Pkcs11Signer(hsm.label, hsm.pin, label, module=hsm.module) as hsm_signer:
        try:
            tier2_signer = KeyfileSigner(Account.create().key)

            async def member(
                name: str, roles: list[str], signer: Any = None
            ) -> tuple[TierflowClient, str]:
                made = await operator.members.create(
                    name,
                    roles,
                    KYC_UNTIL,
                    address=signer.address if signer is not None else None,
                )
                assert made.custody == ("self" if signer is not None else "hosted")
                client = TierflowClient(
                    stack.base_url, made.api_key, signer=signer, confirm=confirm
                )
                clients.append(client)
                return client, made.address

            core, core_address = await member("core", ["core_enterprise"])
            tier1, tier1_address = await member("tier-1", ["supplier"])
            tier2, _ = await member("tier-2 (self, key file)", ["supplier"], tier2_signer)
            _, tier3_address = await member("tier-3", ["supplier"])
            bank, _ = await member("bank (self, HSM)", ["financier"], hsm_signer)
            addresses = {"core": core_address, "tier1": tier1_address, "tier3": tier3_address}
            await operator.members.set_program_limit(addresses["core"], 10**12)

            # The bank's credit line is an action on chain: signed in the HSM.
            line = await bank.credit_lines.set(
                addresses["core"], 10**11, registration_no="ZD-2026-07"
            )
            assert line.limit == 10**11
            assert seen[-1].signer == bank_address
            assert seen[-1].function == "setExposureLimit"

            face = 1_000_000_00
            invoice = await tier1.invoices.register(
                buyer=addresses["core"],
                seller_tax_id="91310000MA1FL0SELF",
                number="SELF-1",
                amount=face,
                issue_date=datetime.fromtimestamp(chain_time(stack) - 3600, UTC),
                document_sha256="ab" * 32,
            )
            await core.invoices.confirm(invoice.id)
            payable = await core.payables.issue(
                supplier=addresses["tier1"],
                face_value=face,
                due_date=chain_time(stack) + 60 * DAY,
                invoice_ids=[invoice.id],
            )
            first = await tier1.claims.transfer(
                payable.root_claim_id, to=tier2_signer.address, amount=600_000_00
            )

            # The self tier-2 supplier splits: the client shows the decoded action and signs.
            split = await tier2.claims.transfer(
                first.claim_id, to=addresses["tier3"], amount=100_000_00
            )
            assert split.kind == "split"
            assert split.claim.holder == addresses["tier3"]
            assert seen[-1].signer == tier2_signer.address
            assert seen[-1].function == "split"
            assert seen[-1].args["value"] == 100_000_00
            history = [e async for e in tier2.claims.history(split.claim_id)]
            assert history[0].event == "ClaimSplit"
            assert history[0].args["from"] == tier2_signer.address
            relayed = rpc_call(stack.rpc_url, "eth_getTransactionByHash", [split.tx_hash])
            assert relayed["from"].lower() != tier2_signer.address.lower()

            applied = await tier2.financing.apply(
                claim_id=first.claim_id, financier=bank_address, amount=300_000_00
            )
            assert applied.status == "applied"
            assert applied.applicant == tier2_signer.address
            quote = await bank.financing.quote(
                claim_id=first.claim_id,
                amount=300_000_00,
                financier=bank_address,
                annual_rate_bps=RATE_BPS,
            )
            approved = await bank.financing.approve(
                applied.id,
                advance=quote.advance,
                discount=quote.discount,
                fees=quote.fees,
                annual_rate_bps=RATE_BPS,
                disbursement_ref="BANK-SELF-1",
            )
            assert approved.status == "approved"
            assert seen[-1].signer == bank_address
            assert seen[-1].function == "approveFinancing"
            assert approved.financed_claim_id is not None
            financed = await bank.claims.get(approved.financed_claim_id)
            assert financed.holder == bank_address

            tree = await core.payables.tree(payable.id)
            custody = {}
            stack_nodes = [tree.root]
            while stack_nodes:
                node = stack_nodes.pop()
                custody[node.holder] = (node.model_extra or {}).get("holder_custody")
                stack_nodes.extend(node.children)
            assert custody[tier2_signer.address] == "self"
            assert custody[bank_address] == "self"
            assert custody[addresses["tier1"]] == "hosted"
            assert await keys_held(stack, [tier2_signer.address, bank_address]) == []
        finally:
            for client in clients:
                await client.aclose()
