"""Custody, the operator's powers, organisation users and dual control (issue 10, SPEC §1–2,
docs/consent.md), through the real HTTP API on a real chain.

- ``self`` custody: a member onboarded with its own address has no key on the platform (the
  keystore table holds none), is shown as ``self`` on the member and as a holder in the
  lineage tree and a piece's history; a second onboarding of the address is ``member_exists``.
- The operator makes no API key or user for a member (``operator_cannot_make_keys``) but may
  revoke one; only the member's admin users make users and keys (``not_member_admin``).
- Dual control: a maker's write answers ``202 awaiting_approval`` (the same on a retry) and
  changes nothing until a checker of the member approves it (never its own request, never a
  maker: ``checker_is_maker``, ``not_checker``); the approved write's answer is the write's own
  and the maker's retry replays it; a declined one answers ``409 approval_declined``.
"""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account
from sqlalchemy import select

from backend.models import ApiKey, KeystoreEntry, MemberProfile
from bench.stack import Stack
from db.engine import create_engine, sessions
from ledger.anvil import ANVIL_CHAIN_ID, ANVIL_FIRST_KEY
from ledger.bindings import Suite
from ledger.deployment import load_deployment
from ledger.node import close_web3, make_web3
from ledger.roles import DEFAULT_ADMIN_ROLE, Role
from tests.support.api import (
    KYC_UNTIL,
    Api,
    Member,
    core_with_limit,
    invoice_body,
    issue,
    problem,
    transfer,
)


async def onboard_self(api: Api, name: str, roles: list[str]) -> tuple[Member, Any]:
    """A ``self`` member: its key made here, in the test, and never given to the platform."""
    account = Account.create()
    r = await api.operator.post(
        "/v1/members",
        {"name": name, "roles": roles, "kyc_expires_at": KYC_UNTIL, "address": account.address},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["address"] == account.address
    assert body["custody"] == "self"
    member = Member(name, account.address, body["api_key"], api.stack.client(body["api_key"]))
    api.members[name] = member
    return member, account


async def stored(stack: Stack, model: Any, address: str) -> list[Any]:
    engine = create_engine(stack.database_url)
    try:
        async with sessions(engine)() as session:
            column = model.member if hasattr(model, "member") else model.address
            return list((await session.execute(select(model).where(column == address))).scalars())
    finally:
        await engine.dispose()


async def test_self_custody_member_has_no_key_on_the_platform(api: Api, stack: Stack) -> None:
    member, account = await onboard_self(api, "self-supplier", ["supplier"])
    r = await member.get(f"/v1/members/{member.address}")
    assert r.status_code == 200, r.text
    assert r.json()["custody"] == "self"
    assert await stored(stack, KeystoreEntry, member.address) == []
    profiles = await stored(stack, MemberProfile, member.address)
    assert [p.custody for p in profiles] == ["self"]
    # Its first API key works (it reads), and belongs to its admin user.
    users = await member.get(f"/v1/members/{member.address}/users")
    assert users.status_code == 200, users.text
    assert [u["role"] for u in users.json()["items"]] == ["admin"]

    hosted = await api.member("hosted-supplier", ["supplier"])
    r = await hosted.get(f"/v1/members/{hosted.address}")
    assert r.json()["custody"] == "hosted"
    assert len(await stored(stack, KeystoreEntry, hosted.address)) == 1

    # The same address again, in any case: refused, nothing new stored.
    again = await api.operator.post(
        "/v1/members",
        {
            "name": "again",
            "roles": ["financier"],
            "kyc_expires_at": KYC_UNTIL,
            "address": account.address.lower(),
        },
    )
    problem(again, 409, "member_exists")
    taken = await api.operator.post(
        "/v1/members",
        {
            "name": "hosted again",
            "roles": ["supplier"],
            "kyc_expires_at": KYC_UNTIL,
            "address": hosted.address,
        },
    )
    problem(taken, 409, "member_exists")
    assert len(await stored(stack, ApiKey, member.address)) == 1
    assert [p.name for p in await stored(stack, MemberProfile, member.address)] == ["self-supplier"]


async def test_a_refused_self_onboarding_leaves_nothing(api: Api, stack: Stack) -> None:
    zero = "0x" + "00" * 20
    r = await api.operator.post(
        "/v1/members",
        {"name": "zero", "roles": ["supplier"], "kyc_expires_at": KYC_UNTIL, "address": zero},
    )
    assert 400 <= r.status_code < 500, r.text
    assert await stored(stack, MemberProfile, zero) == []
    assert await stored(stack, ApiKey, zero) == []


@pytest.mark.parametrize("custody", ["self", "hosted"])
async def test_an_auditor_with_a_business_role_is_refused_by_the_registry(
    api: Api, stack: Stack, custody: str
) -> None:
    """SPEC §1: an auditor holds no business role; the MemberRegistry refuses the mask
    (MemberAuditorExclusive) and the API answers its code; nothing is stored."""
    account = Account.create()
    body: dict[str, Any] = {
        "name": f"auditing supplier ({custody})",
        "roles": ["auditor", "supplier"],
        "kyc_expires_at": KYC_UNTIL,
    }
    if custody == "self":
        body["address"] = account.address
    refused = problem(await api.operator.post("/v1/members", body), 422, "auditor_exclusive")
    assert refused["chain_error"] == "MemberAuditorExclusive"
    if custody == "self":
        assert await stored(stack, MemberProfile, account.address) == []
        assert await stored(stack, ApiKey, account.address) == []


async def test_the_operator_account_holds_the_operator_role_only(api: Api, stack: Stack) -> None:
    """The API's operator account is no default admin: role grants are the AdminTimelock's."""
    deployment = load_deployment(ANVIL_CHAIN_ID, stack.data_dir / "deployments")
    assert deployment is not None
    assert deployment.admin_timelock is not None
    operator = Account.from_key(ANVIL_FIRST_KEY).address  # the local chain's deployer
    w3 = make_web3(stack.rpc_url)
    try:
        members = Suite(w3, deployment).members
        assert await members.functions.defaultAdmin().call() == deployment.admin_timelock.address
        assert await members.functions.hasRole(Role.OPERATOR.role_id, operator).call()
        assert not await members.functions.hasRole(DEFAULT_ADMIN_ROLE, operator).call()
    finally:
        await close_web3(w3)


async def test_holders_custody_shows_in_tree_and_history(api: Api) -> None:
    core = await core_with_limit(api, "custody-core", 10**15)
    supplier = await api.member("custody-tier1", ["supplier"])
    tier2, _ = await onboard_self(api, "custody-tier2-self", ["supplier"])
    payable = await issue(api, core, supplier, 1_000_000)
    root = payable["root_claim_id"]
    r = await transfer(supplier, root, tier2, 400_000)
    assert r.status_code == 201, r.text
    piece = r.json()["claim_id"]

    tree = await core.get(f"/v1/payables/{payable['id']}/tree")
    assert tree.status_code == 200, tree.text
    node = tree.json()["root"]
    assert node["holder"] == supplier.address
    assert node["holder_custody"] == "hosted"
    (child,) = node["children"]
    assert child["holder"] == tier2.address
    assert child["holder_custody"] == "self"

    history = await tier2.get(f"/v1/claims/{piece}/history")
    assert history.status_code == 200, history.text
    assert history.json()["holder"] == tier2.address
    assert history.json()["holder_custody"] == "self"
    history = await supplier.get(f"/v1/claims/{root}/history")
    assert history.json()["holder_custody"] == "hosted"


async def test_operator_makes_no_keys_or_users_for_a_member(api: Api) -> None:
    member = await api.member("keys-member", ["supplier"])
    path = f"/v1/members/{member.address}"
    problem(
        await api.operator.post(f"{path}/api-keys", {"label": "x"}),
        403,
        "operator_cannot_make_keys",
    )
    problem(
        await api.operator.post(f"{path}/users", {"name": "mallory", "role": "checker"}),
        403,
        "operator_cannot_make_keys",
    )
    problem(
        await api.operator.put(f"{path}/dual-control", {"enabled": True}),
        403,
        "operator_cannot_make_keys",
    )
    # The member's admin makes a key; the operator may revoke it (for security).
    made = await member.post(f"{path}/api-keys", {"label": "second"})
    assert made.status_code == 201, made.text
    revoked = await api.operator.http.delete(f"{path}/api-keys/{made.json()['id']}")
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_at"] is not None
    # Another member cannot see or touch them.
    other = await api.member("keys-other", ["supplier"])
    problem(
        await other.post(f"{path}/users", {"name": "x", "role": "maker"}), 404, "member_not_found"
    )
    problem(await other.get(f"{path}/users"), 404, "member_not_found")


@pytest.fixture(scope="module")
async def org(api: Api) -> dict[str, Member]:
    """A supplier with a maker, two checkers, and dual control on; and its buyer."""
    admin = await api.member("dual-supplier", ["supplier"])
    buyer = await api.member("dual-buyer", ["core_enterprise"])
    out = {"admin": admin, "buyer": buyer}
    for name, role in (("maker", "maker"), ("checker", "checker"), ("checker2", "checker")):
        r = await admin.post(f"/v1/members/{admin.address}/users", {"name": name, "role": role})
        assert r.status_code == 201, r.text
        made = r.json()
        assert made["role"] == role
        assert made["member"] == admin.address
        out[name] = Member(name, admin.address, made["api_key"], api.stack.client(made["api_key"]))
        out[name].roles = [made["id"]]  # the user's id, for the assertions below
        api.members[f"dual-supplier/{name}"] = out[name]  # closed with the others
    return out


async def test_only_admins_manage_users_and_settings(api: Api, org: dict[str, Member]) -> None:
    address = org["admin"].address
    for who in ("maker", "checker"):
        m = org[who]
        problem(
            await m.post(f"/v1/members/{address}/users", {"name": "x", "role": "admin"}),
            403,
            "not_member_admin",
        )
        problem(
            await m.post(f"/v1/members/{address}/api-keys", {"label": "x"}), 403, "not_member_admin"
        )
        problem(
            await m.put(f"/v1/members/{address}/dual-control", {"enabled": True}),
            403,
            "not_member_admin",
        )
    r = await org["maker"].get(f"/v1/members/{address}/users")
    assert r.status_code == 200, r.text
    assert sorted(u["role"] for u in r.json()["items"]) == ["admin", "checker", "checker", "maker"]
    bad = await org["admin"].post(f"/v1/members/{address}/users", {"name": "x", "role": "owner"})
    assert bad.status_code == 422, bad.text


async def test_dual_control_holds_a_makers_write_for_a_checker(
    api: Api, org: dict[str, Member]
) -> None:
    admin, maker, checker, checker2 = org["admin"], org["maker"], org["checker"], org["checker2"]
    r = await admin.put(f"/v1/members/{admin.address}/dual-control", {"enabled": True})
    assert r.status_code == 200, r.text
    assert r.json()["dual_control"] is True
    assert (await admin.get(f"/v1/members/{admin.address}")).json()["dual_control"] is True

    body = invoice_body(org["buyer"], 5_000, await api.chain_time() - 3600)
    held = await maker.post("/v1/invoices", body, key="dual-1")
    assert held.status_code == 202, held.text
    answer = held.json()
    assert answer["status"] == "awaiting_approval"
    approval = answer["approval"]
    assert approval["status"] == "pending"
    assert approval["operation"] == "invoices.register"
    assert approval["maker_user_id"] == maker.roles[0]
    # A retry answers the same; nothing was written meanwhile.
    again = await maker.post("/v1/invoices", body, key="dual-1")
    assert again.status_code == 202
    assert again.json()["approval"]["id"] == approval["id"]
    listed = await maker.get("/v1/invoices")
    assert all(i["number"] != body["number"] for i in listed.json()["items"])
    # The same key for another request is refused.
    other = dict(body, amount=6_000)
    problem(await maker.post("/v1/invoices", other, key="dual-1"), 422, "idempotency_key_reused")

    decide = f"/v1/approvals/{approval['id']}"
    problem(await maker.post(decide, {"decision": "approve"}), 403, "not_checker")
    problem(await org["buyer"].post(decide, {"decision": "approve"}), 404, "approval_not_found")
    pending = await checker.get("/v1/approvals", status="pending")
    assert [a["id"] for a in pending.json()["items"]] == [approval["id"]]

    approved = await checker.post(decide, {"decision": "approve"})
    assert approved.status_code == 201, approved.text
    invoice = approved.json()
    assert invoice["number"] == body["number"]
    assert invoice["tx_hash"].startswith("0x")
    replay = await maker.post("/v1/invoices", body, key="dual-1")
    assert replay.status_code == 201, replay.text
    assert replay.json() == invoice
    assert replay.headers.get("Idempotent-Replayed") == "true"
    shown = await checker.get(decide)
    assert shown.json()["status"] == "approved"
    assert shown.json()["checker_user_id"] == checker.roles[0]
    # Approving again is no second write; declining now is refused.
    assert (await checker2.post(decide, {"decision": "approve"})).json() == invoice
    problem(await checker.post(decide, {"decision": "decline"}), 409, "approval_already_decided")

    # A checker's own write waits for another checker, never for itself.
    body2 = invoice_body(org["buyer"], 7_000, await api.chain_time() - 3600)
    own = await checker.post("/v1/invoices", body2, key="dual-2")
    assert own.status_code == 202, own.text
    own_id = own.json()["approval"]["id"]
    problem(
        await checker.post(f"/v1/approvals/{own_id}", {"decision": "approve"}),
        403,
        "checker_is_maker",
    )
    declined = await checker2.post(f"/v1/approvals/{own_id}/decline", {"reason": "wrong buyer"})
    assert declined.status_code == 200, declined.text
    assert declined.json()["status"] == "declined"
    assert declined.json()["reason"] == "wrong buyer"
    problem(await checker.post("/v1/invoices", body2, key="dual-2"), 409, "approval_declined")
    problem(await checker2.post(f"/v1/approvals/{own_id}/approve"), 409, "approval_already_decided")

    # The audit log names the checker's decision beside the maker's request.
    log = await api.operator.get("/v1/audit/log", member=admin.address)
    assert log.status_code == 200, log.text
    paths = {(e["path"], e["api_key_id"]) for e in log.json()["items"]}
    assert (decide, checker.key.split("_")[1]) in paths
    assert ("/v1/invoices", maker.key.split("_")[1]) in paths

    # Dual control off: the maker's write goes straight through.
    r = await admin.put(f"/v1/members/{admin.address}/dual-control", {"enabled": False})
    assert r.status_code == 200, r.text
    body3 = invoice_body(org["buyer"], 8_000, await api.chain_time() - 3600)
    assert (await maker.post("/v1/invoices", body3)).status_code == 201


async def test_a_dual_control_switch_binds_the_next_write_whatever_reads_cached(
    api: Api, org: dict[str, Member]
) -> None:
    """The setting travels with a write's own key lookup (no read of its own): a caller the
    worker cached for reads before the switch never carries it into a write."""
    admin, maker = org["admin"], org["maker"]
    path = f"/v1/members/{admin.address}/dual-control"
    assert (await admin.put(path, {"enabled": False})).status_code == 200
    assert (await maker.get("/v1/invoices")).status_code == 200  # the maker's caller cached
    assert (await admin.put(path, {"enabled": True})).status_code == 200
    body = invoice_body(org["buyer"], 8_000, await api.chain_time() - 3600)
    held = await maker.post("/v1/invoices", body, key="dual-switch-1")
    assert held.status_code == 202, held.text
    assert held.json()["status"] == "awaiting_approval"
    assert (await maker.get("/v1/invoices")).status_code == 200
    assert (await admin.put(path, {"enabled": False})).status_code == 200
    body2 = invoice_body(org["buyer"], 9_000, await api.chain_time() - 3600)
    ran = await maker.post("/v1/invoices", body2, key="dual-switch-2")
    assert ran.status_code == 201, ran.text
    assert (await admin.put(path, {"enabled": True})).status_code == 200


async def test_auditors_write_nothing_here(api: Api, org: dict[str, Member]) -> None:
    auditor = await api.member("consent-auditor", ["auditor"])
    path = f"/v1/members/{auditor.address}"
    problem(
        await auditor.post(f"{path}/users", {"name": "x", "role": "maker"}),
        403,
        "auditor_read_only",
    )
    problem(
        await auditor.post("/v1/approvals/apr_0000000000000000", {"decision": "approve"}),
        403,
        "auditor_read_only",
    )
