"""Self custody through the client against the real platform (issue 10): a ``self`` tier-2
supplier whose key is a key file and a ``self`` bank whose key lives in SoftHSM2 act through
:class:`~client.TierflowClient` with their signers; every write of theirs comes back as an
intent, which the client verifies against the deployment, decodes and signs, and the answer
is the write's own. The chain's records name the members' own addresses (not the relayer's);
the platform's database holds no key for them; the tree shows them as ``self``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from sqlalchemy import select

from backend.models import KeystoreEntry
from bench.stack import Stack
from client import TierflowClient
from client.errors import ApprovalPending
from client.intents import DecodedAction
from client.signing import KeyfileSigner, Pkcs11Signer, Signer
from client.softhsm import SoftHsmToken
from db.engine import create_engine, sessions
from ledger.anvil import rpc_call
from ledger.paths import package_root
from tests.support.client import DAY, KYC_UNTIL, RATE_BPS, chain_time


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


OpenClient = Callable[..., TierflowClient]


@pytest.fixture
async def open_client(stack: Stack) -> AsyncIterator[OpenClient]:
    """``open_client(api_key, signer=…, confirm=…)``: a client of the stack, closed after the
    test."""
    opened: list[TierflowClient] = []

    def open_(api_key: str, **kwargs: Any) -> TierflowClient:
        opened.append(TierflowClient(stack.base_url, api_key, **kwargs))
        return opened[-1]

    try:
        yield open_
    finally:
        for client in opened:
            await client.aclose()


@pytest.fixture
def operator(stack: Stack, open_client: OpenClient) -> TierflowClient:
    return open_client(stack.operator_key)


async def new_member(
    operator: TierflowClient, name: str, roles: list[str], signer: Signer | None = None
) -> Any:
    """A member the operator registers: ``self`` custody with ``signer``, hosted without."""
    made = await operator.members.create(
        name, roles, KYC_UNTIL, address=signer.address if signer is not None else None
    )
    assert made.custody == ("self" if signer is not None else "hosted")
    return made


async def issued_payable(
    stack: Stack,
    core: TierflowClient,
    supplier: TierflowClient,
    addresses: tuple[str, str],
    face: int,
    number: str,
    seller_tax_id: str,
) -> Any:
    """The supplier registers an invoice, the core confirms it and issues a payable of
    ``face`` against it, due in 60 days; ``addresses`` are the core's and the supplier's."""
    core_address, supplier_address = addresses
    invoice = await supplier.invoices.register(
        buyer=core_address,
        seller_tax_id=seller_tax_id,
        number=number,
        amount=face,
        issue_date=datetime.fromtimestamp(chain_time(stack) - 3600, UTC),
        document_sha256=hashlib.sha256(number.encode()).hexdigest(),
    )
    await core.invoices.confirm(invoice.id)
    return await core.payables.issue(
        supplier=supplier_address,
        face_value=face,
        due_date=chain_time(stack) + 60 * DAY,
        invoice_ids=[invoice.id],
    )


async def auto_approve_for(bank: TierflowClient, obligor: str) -> None:
    """The bank's policy approves applications on ``obligor``'s payables at ``RATE_BPS``."""
    await bank.financing_policy.put(
        enabled=True,
        max_amount=10**10,
        max_tenor_days=365,
        annual_rate_bps=RATE_BPS,
        fee_bps=10,
        allowed_obligors=[obligor],
    )


async def approve_at_quote(
    bank: TierflowClient, financing_id: int, claim_id: int, amount: int, ref: str
) -> Any:
    """The bank approves an application at the platform's quote for ``RATE_BPS``."""
    assert bank.signer is not None
    quote = await bank.financing.quote(
        claim_id=claim_id, amount=amount, financier=bank.signer.address, annual_rate_bps=RATE_BPS
    )
    return await bank.financing.approve(
        financing_id,
        advance=quote.advance,
        discount=quote.discount,
        fees=quote.fees,
        annual_rate_bps=RATE_BPS,
        disbursement_ref=ref,
    )


async def test_self_supplier_and_self_bank_sign_their_own_actions(
    stack: Stack,
    hsm_signer: Callable[[str], Pkcs11Signer],
    open_client: OpenClient,
    operator: TierflowClient,
) -> None:
    seen: list[DecodedAction] = []

    def confirm(action: DecodedAction) -> bool:
        seen.append(action)
        return True

    bank_signer = hsm_signer("bank")
    bank_address = bank_signer.address
    tier2_signer = KeyfileSigner(Account.create().key)

    async def member(
        name: str, roles: list[str], signer: Signer | None = None
    ) -> tuple[TierflowClient, str]:
        made = await new_member(operator, name, roles, signer)
        return open_client(made.api_key, signer=signer, confirm=confirm), made.address

    core, core_address = await member("core", ["core_enterprise"])
    tier1, tier1_address = await member("tier-1", ["supplier"])
    tier2, _ = await member("tier-2 (self, key file)", ["supplier"], tier2_signer)
    _, tier3_address = await member("tier-3", ["supplier"])
    bank, _ = await member("bank (self, HSM)", ["financier"], bank_signer)
    await operator.members.set_program_limit(core_address, 10**12)

    # The bank's credit line is an action on chain: signed in the HSM.
    line = await bank.credit_lines.set(core_address, 10**11, registration_no="ZD-2026-07")
    assert line.limit == 10**11
    assert seen[-1].signer == bank_address
    assert seen[-1].function == "setExposureLimit"

    payable = await issued_payable(
        stack,
        core,
        tier1,
        (core_address, tier1_address),
        1_000_000_00,
        "SELF-1",
        "91310000MA1FL0SELF",
    )
    first = await tier1.claims.transfer(
        payable.root_claim_id, to=tier2_signer.address, amount=600_000_00
    )

    # The self tier-2 supplier splits: the client shows the decoded action and signs.
    split = await tier2.claims.transfer(first.claim_id, to=tier3_address, amount=100_000_00)
    assert split.kind == "split"
    assert split.claim.holder == tier3_address
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
    approved = await approve_at_quote(bank, applied.id, first.claim_id, 300_000_00, "BANK-SELF-1")
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
    assert custody[tier1_address] == "hosted"
    assert await keys_held(stack, [tier2_signer.address, bank_address]) == []


async def test_auto_approval_for_a_self_bank_through_its_own_signer(
    stack: Stack,
    hsm_signer: Callable[[str], Pkcs11Signer],
    open_client: OpenClient,
    operator: TierflowClient,
) -> None:
    """The platform prepares the approval the bank's policy matches as an intent; the bank's
    signer (client.commands.sign_open_intents, what ``tierflow signer`` runs) re-checks it
    against the bank's own policy and signs it in the HSM; the request is approved."""
    from client.commands import sign_open_intents

    bank_signer = hsm_signer("autobank")
    bank_address = bank_signer.address

    async def member(
        name: str, roles: list[str], signer: Signer | None = None
    ) -> tuple[TierflowClient, str]:
        made = await new_member(operator, name, roles, signer)
        return open_client(made.api_key, signer=signer), made.address

    core, core_address = await member("auto core", ["core_enterprise"])
    supplier, supplier_address = await member("auto supplier", ["supplier"])
    bank, _ = await member("auto bank (self, HSM)", ["financier"], bank_signer)
    await operator.members.set_program_limit(core_address, 10**12)
    await bank.credit_lines.set(core_address, 10**11, registration_no="ZD-2026-08")
    await auto_approve_for(bank, core_address)
    payable = await issued_payable(
        stack,
        core,
        supplier,
        (core_address, supplier_address),
        500_000_00,
        "AUTO-1",
        "91310000MA1FL0AUTO",
    )
    started = time.monotonic()
    applied = await supplier.financing.apply(
        claim_id=payable.root_claim_id, financier=bank_address, amount=200_000_00
    )

    def bank_policy(action: DecodedAction) -> bool:
        # The bank's own rule, re-checked before its key signs anything.
        return action.function == "approveFinancing" and action.signer == bank_address

    status = applied.status
    for _ in range(120):
        await sign_open_intents(bank, policy=bank_policy)
        status = (await supplier.financing.get(applied.id)).status
        if status == "approved":
            break
        await asyncio.sleep(0.5)
    elapsed = time.monotonic() - started
    assert status == "approved", status
    financed = await supplier.financing.get(applied.id)
    assert financed.auto_decision is not None
    assert financed.auto_decision.outcome == "approved"
    print(f"self bank auto-approval: {elapsed:.1f} s from application to approval")
    assert elapsed < 60
    assert await keys_held(stack, [bank_address]) == []


async def test_dual_control_and_the_banks_signer_process_end_to_end(
    stack: Stack,
    hsm: SoftHsmToken,
    hsm_signer: Callable[[str], Pkcs11Signer],
    open_client: OpenClient,
    operator: TierflowClient,
    tmp_path: Path,
) -> None:
    """Issue 10's end-to-end case through HTTP with the client: a ``self`` tier-2 supplier whose
    key lives in SoftHSM2 works under dual control (its maker prepares, its checker approves,
    its key holder signs in the HSM); it receives a piece, splits it and applies for financing.
    A ``self`` bank (key in SoftHSM2) approves one application by hand through the client and
    another through ``tierflow signer --hsm``, a process of its own beside its token that signs
    what the platform's auto-approval prepared. The chain's records name the members' own
    addresses; the platform's database holds no key of theirs."""
    supplier_signer, bank_signer = hsm_signer("e2e-supplier"), hsm_signer("e2e-bank")
    supplier_address, bank_address = supplier_signer.address, bank_signer.address
    signer_process: asyncio.subprocess.Process | None = None
    try:
        core_made = await new_member(operator, "e2e core", ["core_enterprise"])
        tier1_made = await new_member(operator, "e2e tier-1", ["supplier"])
        tier3_made = await new_member(operator, "e2e tier-3", ["supplier"])
        supplier_made = await new_member(
            operator, "e2e tier-2 (self, HSM)", ["supplier"], supplier_signer
        )
        bank_made = await new_member(operator, "e2e bank (self, HSM)", ["financier"], bank_signer)
        assert (supplier_made.address, bank_made.address) == (supplier_address, bank_address)
        core, tier1 = open_client(core_made.api_key), open_client(tier1_made.api_key)
        key_holder = open_client(supplier_made.api_key, signer=supplier_signer)  # the admin user
        bank = open_client(bank_made.api_key, signer=bank_signer)
        await operator.members.set_program_limit(core_made.address, 10**12)
        await bank.credit_lines.set(core_made.address, 10**11, registration_no="ZD-2026-E2E")

        # The supplier's organisation: a maker and a checker, dual control on.
        maker_made = await key_holder.members.create_user(supplier_address, "maker", "maker")
        checker_made = await key_holder.members.create_user(supplier_address, "checker", "checker")
        maker, checker = open_client(maker_made.api_key), open_client(checker_made.api_key)
        on = await key_holder.request(
            "PUT", f"/v1/members/{supplier_address}/dual-control", json={"enabled": True}
        )
        assert on.status_code == 200, on.text

        payable = await issued_payable(
            stack,
            core,
            tier1,
            (core_made.address, tier1_made.address),
            2_000_000_00,
            "E2E-1",
            "91310000MA1FL0E2E1",
        )
        received = await tier1.claims.transfer(
            payable.root_claim_id, to=supplier_address, amount=1_500_000_00
        )

        async def under_dual_control(write: Any) -> Any:
            """The maker's write waits for the checker, then for the key holder's HSM."""
            with pytest.raises(ApprovalPending) as held:
                await write(maker)
            pending = held.value.pending
            decided = await checker.approvals.approve(pending.approval_id)
            assert decided["status"] == "awaiting_signature", decided
            assert decided["intent"]["member"] == supplier_address
            await key_holder.intents.sign(decided["intent"]["id"])
            return await pending.wait(timeout_s=60, interval_s=0.2)

        split = await under_dual_control(
            lambda c: c.claims.transfer(received.claim_id, to=tier3_made.address, amount=200_000_00)
        )
        assert split.kind == "split"
        assert split.claim.holder == tier3_made.address
        history = [e async for e in maker.claims.history(split.claim_id)]
        assert history[0].event == "ClaimSplit"
        assert history[0].args["from"] == supplier_address
        relayed = rpc_call(stack.rpc_url, "eth_getTransactionByHash", [split.tx_hash])
        assert relayed["from"].lower() != supplier_address.lower()

        async def applied_for(amount: int, min_advance: int) -> Any:
            """The supplier applies to the bank under dual control for part of its piece."""
            return await under_dual_control(
                lambda c: c.financing.apply(
                    claim_id=received.claim_id,
                    financier=bank_address,
                    amount=amount,
                    min_advance=min_advance,
                )
            )

        # By hand: the bank's officer approves through the client (signed in its HSM).
        # The applicant commits on chain to the least advance it accepts (min_advance).
        by_hand = await applied_for(300_000_00, min_advance=270_000_00)
        assert by_hand.status == "applied"
        assert by_hand.applicant == supplier_address
        assert by_hand.min_advance == 270_000_00
        approved = await approve_at_quote(
            bank, by_hand.id, received.claim_id, 300_000_00, "BANK-E2E-1"
        )
        assert approved.status == "approved"
        assert approved.advance is not None
        assert approved.advance >= 270_000_00
        assert approved.financed_claim_id is not None
        assert (await bank.claims.get(approved.financed_claim_id)).holder == bank_address

        # Automatically: the bank's policy, and its own signer process beside the token.
        await auto_approve_for(bank, core_made.address)
        policy = tmp_path / "bank-policy.json"
        policy.write_text(json.dumps({"functions": ["approveFinancing"], "max_value": 10**10}))
        signer_process = await asyncio.create_subprocess_exec(
            *[sys.executable, "-m", "tierflow.cli", "signer", "--policy", str(policy)],
            *["--base-url", stack.base_url, "--hsm", "--hsm-token", hsm.label],
            *["--hsm-key", bank_signer.key_label, "--interval", "0.5"],
            env={
                **os.environ,
                **hsm.env,
                "PYTHONPATH": str(package_root()),
                "TIERFLOW_SIGNER_API_KEY": bank_made.api_key,
                "TIERFLOW_SIGNER_HSM_PIN": hsm.pin,
            },
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        automatic = await applied_for(400_000_00, min_advance=360_000_00)
        assert automatic.min_advance == 360_000_00
        applied_at = time.monotonic()
        status = automatic.status
        for _ in range(240):
            status = (await maker.financing.get(automatic.id)).status
            if status != "applied" or signer_process.returncode is not None:
                break
            await asyncio.sleep(0.25)
        elapsed = time.monotonic() - applied_at
        assert status == "approved", status
        # The auto-decision's record follows once the relayed approval's answer is stored.
        outcome = None
        for _ in range(240):
            decision = (await maker.financing.get(automatic.id)).auto_decision
            outcome = decision.outcome if decision is not None else None
            if outcome == "approved":
                break
            await asyncio.sleep(0.25)
        assert outcome == "approved", outcome
        print(f"tierflow signer (SoftHSM2): {elapsed:.1f} s from application to approval")
        settled_terms = await maker.financing.get(automatic.id)
        assert settled_terms.advance is not None
        assert settled_terms.advance >= 360_000_00  # the policy honoured min_advance
        financed = settled_terms.financed_claim_id
        assert financed is not None
        assert (await bank.claims.get(financed)).holder == bank_address

        assert await keys_held(stack, [supplier_address, bank_address]) == []
    finally:
        if signer_process is not None and signer_process.returncode is None:
            signer_process.send_signal(signal.SIGTERM)
            out, _ = await asyncio.wait_for(signer_process.communicate(), 60)
            print(out.decode(errors="replace"))
