"""Self custody end to end through the HTTP API on a real chain (SPEC §4, docs/consent.md).

A ``self`` supplier (its key made here, never given to the platform) holds a piece. Its write
answers ``202 awaiting_signature`` with an intent (EIP-712 ``ForwardRequest`` typed data whose
digest is the forwarder's own ``hashRequest``, the action in plain fields); a retry under the
same key answers the same. A signature by another key is refused (403 ``signature_not_member``)
and nothing reaches the chain. The member's signature makes the relayer submit it through the
forwarder: the answer is the write's own (201, the created piece), the chain records the
member as the actor although the relayer sent the transaction, and the same signature again,
or the write retried with its key, replays the answer. An abandoned intent blocks nothing
later; one signed after its deadline is ``409 intent_expired``; one whose call fails when
relayed answers the contract's decoded refusal, and its nonce is spent. The member's own key
over other typed data (another chain id, another forwarder, another intent's action) is
``403 signature_not_member`` with the chain and the nonce untouched, and a relayed request with
its signature cannot run again on chain (``ForwarderNonceUsed``) nor pass for another intent.
While the platform is paused a signature is ``503 platform_paused``: nothing sent, the intent
open, its nonce unspent; after the unpause the same signature relays the write.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address

from bench.stack import Stack
from ledger.anvil import rpc_call
from ledger.errors import AnvilError
from ledger.reverts import decode_revert
from tests.support.api import KYC_UNTIL, Api, Ledger, Member, core_with_limit, invoice_body, problem
from tests.support.intents import issue_to_self, sign, signed


def block(stack: Stack) -> int:
    return int(rpc_call(stack.rpc_url, "eth_blockNumber"), 16)


@pytest.fixture(scope="module")
async def ledger(stack: Stack, api: Api) -> Any:
    async with Ledger.open(stack, api) as opened:
        yield opened


@pytest.fixture(scope="module")
async def parties(api: Api) -> dict[str, Any]:
    account = Account.create()
    r = await api.operator.post(
        "/v1/members",
        {
            "name": "self tier-1",
            "roles": ["supplier"],
            "kyc_expires_at": KYC_UNTIL,
            "address": account.address,
        },
    )
    assert r.status_code == 201, r.text
    key = r.json()["api_key"]
    supplier = Member("self tier-1", account.address, key, api.stack.client(key))
    api.members["self tier-1"] = supplier
    core = await core_with_limit(api, "intents-core", 10**15)
    tier2 = await api.member("intents-tier2", ["supplier"])
    root = await issue_to_self(api, core, supplier, account, 1_000_000)
    return {
        "account": account,
        "supplier": supplier,
        "core": core,
        "tier2": tier2,
        "root": root,
    }


async def split(
    parties: dict[str, Any], amount: int, key: str | None = None, root: int | None = None
) -> Any:
    supplier: Member = parties["supplier"]
    return await supplier.post(
        f"/v1/claims/{parties['root'] if root is None else root}/transfers",
        {"to": parties["tier2"].address, "amount": amount},
        key=key,
    )


async def test_sign_relay_and_replay(
    stack: Stack, api: Api, ledger: Ledger, parties: dict[str, Any]
) -> None:
    supplier: Member = parties["supplier"]
    account: LocalAccount = parties["account"]
    r = await split(parties, 100_000, key="intent-split-1")
    assert r.status_code == 202, r.text
    answer = r.json()
    assert answer["status"] == "awaiting_signature"
    intent = answer["intent"]
    assert intent["member"] == supplier.address
    assert intent["action"]["contract"] == "ClaimLedger"
    assert intent["action"]["function"] == "split"
    assert intent["action"]["args"]["value"] == 100_000
    assert intent["action"]["args"]["to"] == parties["tier2"].address
    typed = intent["typed_data"]
    forwarder = ledger.suite.forwarder
    assert typed["domain"]["verifyingContract"] == forwarder.address
    assert typed["domain"]["chainId"] == 31337
    message = typed["message"]
    assert message["from"] == supplier.address
    request = (
        message["from"],
        message["to"],
        message["value"],
        message["gas"],
        message["nonce"],
        message["deadline"],
        bytes.fromhex(message["data"][2:]),
        b"",
    )
    on_chain = await forwarder.functions.hashRequest(request).call()
    assert "0x" + bytes(on_chain).hex() == intent["digest"]

    again = await split(parties, 100_000, key="intent-split-1")
    assert again.status_code == 202
    assert again.json()["intent"]["id"] == intent["id"]
    listed = await supplier.get("/v1/intents")
    assert intent["id"] in [i["id"] for i in listed.json()["items"]]
    shown = await supplier.get(f"/v1/intents/{intent['id']}")
    assert shown.status_code == 200
    assert shown.json()["digest"] == intent["digest"]
    # Other members do not see it.
    problem(await parties["tier2"].get(f"/v1/intents/{intent['id']}"), 404, "intent_not_found")

    # Another key's signature: refused, nothing sent.
    before = block(stack)
    path = f"/v1/intents/{intent['id']}/signature"
    wrong = await supplier.post(path, {"signature": sign(Account.create(), intent)})
    problem(wrong, 403, "signature_not_member")
    assert block(stack) == before
    holder_before = (await ledger.suite.claim(parties["root"])).holder
    assert holder_before == supplier.address

    signed = await supplier.post(path, {"signature": sign(account, intent)})
    assert signed.status_code == 201, signed.text
    made = signed.json()
    assert made["kind"] == "split"
    assert made["tx_hash"].startswith("0x")
    piece = made["claim_id"]
    assert (await ledger.suite.claim(piece)).holder == parties["tier2"].address
    # The relayer sent the transaction; the chain names the member as the actor.
    tx = rpc_call(stack.rpc_url, "eth_getTransactionByHash", [made["tx_hash"]])
    assert tx["from"].lower() != supplier.address.lower()
    history = await supplier.get(f"/v1/claims/{piece}/history")
    (event,) = [e for e in history.json()["items"] if e["event"] == "ClaimSplit"]
    assert event["args"]["from"] == supplier.address
    assert event["tx_hash"] == made["tx_hash"]

    # Replays: the signature again, the write again under its key.
    replay = await supplier.post(path, {"signature": sign(account, intent)})
    assert replay.status_code == 201
    assert replay.json() == made
    write_again = await split(parties, 100_000, key="intent-split-1")
    assert write_again.status_code == 201
    assert write_again.json() == made
    assert (await supplier.get(f"/v1/intents/{intent['id']}")).json()["status"] == "done"
    # The platform holds no key for the member.
    assert all(i["id"] != intent["id"] for i in (await supplier.get("/v1/intents")).json()["items"])


async def test_abandoned_and_expired_intents_block_nothing(
    stack: Stack, api: Api, ledger: Ledger, parties: dict[str, Any]
) -> None:
    supplier: Member = parties["supplier"]
    account: LocalAccount = parties["account"]
    abandoned = await split(parties, 1_000, key="intent-abandoned")
    assert abandoned.status_code == 202, abandoned.text
    later = await split(parties, 2_000)
    assert later.status_code == 202, later.text
    intent = later.json()["intent"]
    done = await supplier.post(
        f"/v1/intents/{intent['id']}/signature", {"signature": sign(account, intent)}
    )
    assert done.status_code == 201, done.text

    old = abandoned.json()["intent"]
    api.advance_time(901)  # past TIERFLOW_INTENT_TTL_S (900)
    expired_list = await supplier.get("/v1/intents", status="expired")
    assert old["id"] in [i["id"] for i in expired_list.json()["items"]]
    before = block(stack)
    late = await supplier.post(
        f"/v1/intents/{old['id']}/signature", {"signature": sign(account, old)}
    )
    problem(late, 409, "intent_expired")
    assert block(stack) == before
    problem(await split(parties, 1_000, key="intent-abandoned"), 409, "intent_expired")
    problem(
        await supplier.post(
            f"/v1/intents/{old['id']}/signature", {"signature": sign(account, old)}
        ),
        409,
        "intent_expired",
    )


async def test_a_refused_relay_answers_the_contracts_error_and_spends_the_nonce(
    stack: Stack, api: Api, ledger: Ledger, parties: dict[str, Any]
) -> None:
    supplier: Member = parties["supplier"]
    account: LocalAccount = parties["account"]
    available = (await ledger.suite.claim(parties["root"])).amount
    first = await split(parties, available - 10)
    second = await split(parties, available - 10)
    assert first.status_code == second.status_code == 202
    one, two = first.json()["intent"], second.json()["intent"]
    ok = await supplier.post(
        f"/v1/intents/{one['id']}/signature", {"signature": sign(account, one)}
    )
    assert ok.status_code == 201, ok.text
    refused = await supplier.post(
        f"/v1/intents/{two['id']}/signature", {"signature": sign(account, two)}
    )
    body = problem(refused, 409, "amount_exceeds_available")
    assert body["chain_error"] == "ClaimAmountExceedsAvailable"
    nonce = two["typed_data"]["message"]["nonce"]
    assert await ledger.suite.forwarder.functions.nonceUsed(supplier.address, nonce).call()
    shown = await supplier.get(f"/v1/intents/{two['id']}")
    assert shown.json()["status"] == "failed"
    again = await supplier.post(
        f"/v1/intents/{two['id']}/signature", {"signature": sign(account, two)}
    )
    assert again.status_code == 409
    # The stored refusal, replayed: the same body, naming the request that was refused; the
    # replay's own id is in its header.
    assert again.json() == refused.json()
    assert refused.json()["request_id"] == refused.headers["x-request-id"]
    assert again.headers["x-request-id"] != refused.headers["x-request-id"]


async def test_dual_control_then_the_key_holders_signature(api: Api, ledger: Ledger) -> None:
    """A self member under dual control: the maker's write waits for a checker, the approved
    write waits for the key holder's signature, and only then reaches the chain."""
    account = Account.create()
    r = await api.operator.post(
        "/v1/members",
        {
            "name": "self dual",
            "roles": ["supplier"],
            "kyc_expires_at": KYC_UNTIL,
            "address": account.address,
        },
    )
    assert r.status_code == 201, r.text
    admin = Member(
        "self dual", account.address, r.json()["api_key"], api.stack.client(r.json()["api_key"])
    )
    api.members["self dual"] = admin
    users = {}
    for role in ("maker", "checker"):
        made = await admin.post(f"/v1/members/{admin.address}/users", {"name": role, "role": role})
        assert made.status_code == 201, made.text
        key = made.json()["api_key"]
        users[role] = Member(role, admin.address, key, api.stack.client(key))
        api.members[f"self dual/{role}"] = users[role]
    on = await admin.put(f"/v1/members/{admin.address}/dual-control", {"enabled": True})
    assert on.status_code == 200, on.text
    buyer = await api.member("dual-self-buyer", ["core_enterprise"])

    body = invoice_body(buyer, 12_345, await api.chain_time() - 3600)
    held = await users["maker"].post("/v1/invoices", body, key="self-dual-1")
    assert held.status_code == 202, held.text
    assert held.json()["status"] == "awaiting_approval"
    approval = held.json()["approval"]["id"]
    approved = await users["checker"].post(f"/v1/approvals/{approval}", {"decision": "approve"})
    assert approved.status_code == 202, approved.text
    assert approved.json()["status"] == "awaiting_signature"
    intent = approved.json()["intent"]
    assert intent["action"]["function"] == "registerInvoice"
    # The maker's retry shows the same intent; the key holder signs.
    again = await users["maker"].post("/v1/invoices", body, key="self-dual-1")
    assert again.status_code == 202
    assert again.json()["intent"]["id"] == intent["id"]
    done = await signed(admin, account, approved)
    assert done.status_code == 201, done.text
    invoice = await ledger.suite.invoice(bytes.fromhex(done.json()["id"][2:]))
    assert invoice.seller == account.address
    replay = await users["maker"].post("/v1/invoices", body, key="self-dual-1")
    assert replay.status_code == 201
    assert replay.json() == done.json()


def sign_typed(account: LocalAccount, typed: dict[str, Any]) -> str:
    """The account's EIP-712 signature of ``typed`` (as any wallet would make it)."""
    signed = Account.sign_message(encode_typed_data(full_message=typed), account.key)
    return "0x" + bytes(signed.signature).hex()


async def test_a_signature_for_another_chain_deployment_or_action_is_refused(
    stack: Stack, api: Api, ledger: Ledger, parties: dict[str, Any]
) -> None:
    """The member's own key, but over other typed data: another chain id, another deployment
    (another forwarder), another action (another intent's request). Each is 403
    ``signature_not_member`` (the recovered signer is not the member for this intent's
    digest); nothing reaches the chain and the intent's nonce stays unused. The intent then
    still takes the right signature."""
    supplier: Member = parties["supplier"]
    account: LocalAccount = parties["account"]
    forwarder = ledger.suite.forwarder
    root = await issue_to_self(api, parties["core"], supplier, account, 100_000)
    r = await split(parties, 3_000, root=root)
    other = await split(parties, 4_000, root=root)
    assert r.status_code == other.status_code == 202, r.text
    intent, other_intent = r.json()["intent"], other.json()["intent"]
    typed = intent["typed_data"]
    assert sign_typed(account, typed) == sign(account, intent)  # the digest is the typed data's
    nonce = typed["message"]["nonce"]

    another_chain = copy.deepcopy(typed)
    another_chain["domain"]["chainId"] = 1
    another_deployment = copy.deepcopy(typed)
    another_deployment["domain"]["verifyingContract"] = Account.create().address
    wrong = {
        "another chain": sign_typed(account, another_chain),
        "another deployment": sign_typed(account, another_deployment),
        "another action": sign(account, other_intent),
    }
    path = f"/v1/intents/{intent['id']}/signature"
    before = block(stack)
    for case, signature in wrong.items():
        body = problem(
            await supplier.post(path, {"signature": signature}), 403, "signature_not_member"
        )
        assert body["code"] == "signature_not_member", case
    assert block(stack) == before
    assert not await forwarder.functions.nonceUsed(supplier.address, nonce).call()
    assert (await supplier.get(f"/v1/intents/{intent['id']}")).json()["status"] == "open"

    done = await supplier.post(path, {"signature": sign(account, intent)})
    assert done.status_code == 201, done.text
    assert await forwarder.functions.nonceUsed(supplier.address, nonce).call()


async def test_a_relayed_signature_cannot_be_replayed_on_chain(
    stack: Stack, api: Api, ledger: Ledger, parties: dict[str, Any]
) -> None:
    """Anyone holding a relayed request and its signature (the relayer, the database) cannot
    run it again: the forwarder refuses the spent nonce (``ForwarderNonceUsed``) and the
    ledger is unchanged; posted to another intent, it is not that intent's signature."""
    supplier: Member = parties["supplier"]
    account: LocalAccount = parties["account"]
    forwarder = ledger.suite.forwarder
    root = await issue_to_self(api, parties["core"], supplier, account, 100_000)
    r = await split(parties, 5_000, root=root)
    assert r.status_code == 202, r.text
    intent = r.json()["intent"]
    signature = sign(account, intent)
    done = await supplier.post(f"/v1/intents/{intent['id']}/signature", {"signature": signature})
    assert done.status_code == 201, done.text
    root_before = await ledger.suite.claim(root)

    message = intent["typed_data"]["message"]
    request = (
        message["from"],
        message["to"],
        message["value"],
        message["gas"],
        message["nonce"],
        message["deadline"],
        bytes.fromhex(message["data"][2:]),
        bytes.fromhex(signature[2:]),
    )
    call = {
        "from": rpc_call(stack.rpc_url, "eth_accounts")[5],
        "to": forwarder.address,
        "data": forwarder.functions.execute(request)._encode_transaction_data(),
    }
    with pytest.raises(AnvilError) as refused:
        rpc_call(stack.rpc_url, "eth_call", [call, "latest"])
    (data,) = re.findall(r"""["']data["']:\s*["'](0x[0-9a-fA-F]+)""", str(refused.value))
    assert decode_revert(data).name == "ForwarderNonceUsed"
    assert (await ledger.suite.claim(root)) == root_before

    fresh = await split(parties, 5_000, root=root)
    assert fresh.status_code == 202, fresh.text
    again = fresh.json()["intent"]
    before = block(stack)
    problem(
        await supplier.post(f"/v1/intents/{again['id']}/signature", {"signature": signature}),
        403,
        "signature_not_member",
    )
    assert block(stack) == before


async def test_a_signature_while_paused_is_held_and_relayed_after_the_unpause(
    stack: Stack, api: Api, ledger: Ledger, parties: dict[str, Any]
) -> None:
    """While the operator has paused the platform the relayer sends nothing: the forwarder
    would spend the member's nonce on a call the pause refuses. The signature is answered
    503 ``platform_paused`` (with Retry-After), the relayer sends nothing, the intent stays open and
    its nonce unspent; after the unpause the same signature relays the write."""
    supplier: Member = parties["supplier"]
    account: LocalAccount = parties["account"]
    registry = ledger.suite.members
    operator = to_checksum_address(rpc_call(stack.rpc_url, "eth_accounts")[0])  # the deployer
    root = await issue_to_self(api, parties["core"], supplier, account, 100_000)
    r = await split(parties, 7_000, key="intent-paused", root=root)
    assert r.status_code == 202, r.text
    intent = r.json()["intent"]
    nonce = intent["typed_data"]["message"]["nonce"]
    path = f"/v1/intents/{intent['id']}/signature"
    await registry.functions.pause().transact({"from": operator})
    try:
        assert await registry.functions.paused().call() is True
        relayer = rpc_call(stack.rpc_url, "eth_accounts")[2]  # TIERFLOW_RELAYER_PRIVATE_KEY
        sent = rpc_call(stack.rpc_url, "eth_getTransactionCount", [relayer, "pending"])
        held = await supplier.post(path, {"signature": sign(account, intent)})
        body = problem(held, 503, "platform_paused")
        assert body["intent_id"] == intent["id"]
        assert int(held.headers["retry-after"]) > 0
        # Nothing sent (the relayer's count: the audit anchor may mine blocks meanwhile).
        assert rpc_call(stack.rpc_url, "eth_getTransactionCount", [relayer, "pending"]) == sent
        assert not await ledger.suite.forwarder.functions.nonceUsed(supplier.address, nonce).call()
        shown = (await supplier.get(f"/v1/intents/{intent['id']}")).json()
        assert shown["status"] == "open"
        listed = await supplier.get("/v1/intents")
        assert intent["id"] in [i["id"] for i in listed.json()["items"]]
        # The write retried under its key while paused: still waiting for the signature.
        waiting = await split(parties, 7_000, key="intent-paused", root=root)
        assert waiting.status_code == 202, waiting.text
        assert waiting.json()["intent"]["id"] == intent["id"]
    finally:
        await registry.functions.unpause().transact({"from": operator})
    relayed = await supplier.post(path, {"signature": sign(account, intent)})
    assert relayed.status_code == 201, relayed.text
    made = relayed.json()
    assert (await ledger.suite.claim(made["claim_id"])).holder == parties["tier2"].address
    assert await ledger.suite.forwarder.functions.nonceUsed(supplier.address, nonce).call()
    assert (await supplier.get(f"/v1/intents/{intent['id']}")).json()["status"] == "done"
    replay = await split(parties, 7_000, key="intent-paused", root=root)
    assert replay.status_code == 201
    assert replay.json() == made


async def test_a_signature_posted_with_another_key_of_the_member_relays_the_write(
    stack: Stack, api: Api, ledger: Ledger, parties: dict[str, Any]
) -> None:
    """The signature's request may present another API key of the member than the one that
    made the write: the write still runs as the key that made it (looked up by its id), and
    with the key that made it, as the request's own caller (no second lookup)."""
    supplier: Member = parties["supplier"]
    account: LocalAccount = parties["account"]
    made = await supplier.post(f"/v1/members/{supplier.address}/api-keys", {"label": "second"})
    assert made.status_code == 201, made.text
    second = stack.client(made.json()["api_key"])
    root = await issue_to_self(api, parties["core"], supplier, account, 10_000)
    try:
        for poster in (second, supplier.http):
            r = await split(parties, 1_000, root=root)
            assert r.status_code == 202, r.text
            intent = r.json()["intent"]
            relayed = await poster.post(
                f"/v1/intents/{intent['id']}/signature",
                json={"signature": sign(account, intent)},
                headers=Stack.idem(),
            )
            assert relayed.status_code == 201, relayed.text
            piece = relayed.json()["claim_id"]
            assert (await ledger.suite.claim(piece)).holder == parties["tier2"].address
            shown = await supplier.get(f"/v1/intents/{intent['id']}")
            assert shown.json()["status"] == "done"
    finally:
        await second.aclose()


async def test_a_signed_whole_transfer_of_a_piece_split_meanwhile_is_not_relayed(
    stack: Stack, api: Api, ledger: Ledger, parties: dict[str, Any]
) -> None:
    """The member asks to pass a piece on whole (an intent for ``transferClaim``), then splits
    from it before signing that intent. Signed now, the whole transfer would move less than
    the write asked for: nothing is relayed, and the answer is the hosted path's
    ``claim_changed`` with the amount the chain now holds."""
    account: LocalAccount = parties["account"]
    supplier: Member = parties["supplier"]
    root = await issue_to_self(api, parties["core"], supplier, account, 10_000)
    whole = await split(parties, 10_000, root=root)
    assert whole.status_code == 202, whole.text
    first = whole.json()["intent"]
    assert first["action"]["function"] == "transferClaim"
    part = await split(parties, 1_000, root=root)
    assert part.status_code == 202, part.text
    second = part.json()["intent"]
    done = await supplier.post(
        f"/v1/intents/{second['id']}/signature", {"signature": sign(account, second)}
    )
    assert done.status_code == 201, done.text
    before = block(stack)
    stale = await supplier.post(
        f"/v1/intents/{first['id']}/signature", {"signature": sign(account, first)}
    )
    assert problem(stale, 409, "claim_changed")["amount"] == 9_000
    assert block(stack) == before  # nothing relayed
    on_chain = await ledger.suite.claim(root)
    assert (on_chain.holder, on_chain.amount) == (supplier.address, 9_000)
    shown = (await supplier.get(f"/v1/intents/{first['id']}")).json()
    assert shown["status"] == "failed"  # closed with the refusal: it will never be relayed
    assert shown["tx_hash"] is None
    # The signature again, or the write again under its key: the same refusal, nothing sent.
    again = await supplier.post(
        f"/v1/intents/{first['id']}/signature", {"signature": sign(account, first)}
    )
    problem(again, 409, "claim_changed")
    assert block(stack) == before
