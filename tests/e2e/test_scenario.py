"""The whole story of ``tierflow demo`` on a fresh platform, judged from the auditor's view.

:func:`tierflow.demo.run_demo` (the very code the command runs) goes through the HTTP API of
a :class:`~bench.stack.Stack` — anvil, the deployed suite, ``tierflow index`` and
``tierflow serve`` as real processes — once on SQLite (module-scoped: each test below checks
one aspect of the same outcome) and once on PostgreSQL (every check, one test). The checks
read what the auditor reads: the lineage tree, the chain's event feed, exposure, the
reconciliation of the mirror with the contracts, and the API's audit log.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from sqlalchemy import select

from backend.models import KeystoreEntry
from bench.stack import Stack
from db.engine import create_engine, sessions
from ledger.anvil import rpc_call
from tests.support.databases import create_pg_database, drop_pg_database
from tierflow import demo_story, demo_view
from tierflow.demo import run_demo
from tierflow.demo_story import DemoResult

YUAN = demo_story.YUAN
FINANCED = demo_story.AUTO_FINANCING[1] + demo_story.MANUAL_FINANCING[1]


@dataclass
class Outcome:
    stack: Stack
    result: DemoResult
    events: list[dict[str, Any]]  # the payable's events, as the auditor reads the feed
    log: list[dict[str, Any]]  # the whole audit log

    async def auditor_get(self, path: str, **params: Any) -> Any:
        async with self.stack.client(self.result.members["auditor"].key) as http:
            r = await http.get(path, params=params or None)
            assert r.status_code == 200, r.text
            return r.json()


async def _all_pages(get: Callable[..., Awaitable[Any]], path: str, **params: Any) -> list[Any]:
    items: list[Any] = []
    cursor = None
    while True:
        page = await get(path, limit=200, **params, **({"cursor": cursor} if cursor else {}))
        items += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            return items


async def play(stack: Stack, console_file: Path) -> Outcome:
    with console_file.open("w") as out:
        result = await run_demo(stack.base_url, stack.operator_key, Console(file=out, width=120))
    holder = Outcome(stack, result, [], [])
    # The whole feed (a fresh chain holds only the story): the financing desk's events do
    # not carry the payable's id.
    holder.events = await _all_pages(holder.auditor_get, "/v1/audit/events")
    holder.log = await _all_pages(holder.auditor_get, "/v1/audit/log")
    return holder


@pytest.fixture(scope="module")
async def sqlite_outcome(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Outcome]:
    root = tmp_path_factory.mktemp("e2e")
    async with Stack.start(root / "stack", webhooks=True) as stack:
        yield await play(stack, root / "demo.out")


# -- what the auditor must find ------------------------------------------------------------------


def nodes(result: DemoResult) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    todo = [result.tree["root"]]
    while todo:
        node = todo.pop()
        out.append(node)
        todo += node["children"]
    return out


def events(o: Outcome, name: str) -> list[dict[str, Any]]:
    return [e for e in o.events if e["event"] == name]


async def check_every_piece_settled(o: Outcome) -> None:
    p = o.result.payable
    assert p["status"] == "settled"
    assert p["settled_value"] == p["face_value"] == demo_story.FACE_VALUE
    assert p["outstanding_value"] == 0
    pieces = nodes(o.result)
    assert {n["status"] for n in pieces} == {"settled"}
    assert all(n["locked_amount"] == 0 for n in pieces)
    # One settlement per piece, each on chain exactly once, and the payable closed once.
    settled = events(o, "ClaimSettled")
    assert sorted(e["args"]["claimId"] for e in settled) == sorted(n["id"] for n in pieces)
    assert sorted(s["claim_id"] for s in o.result.settlements) == sorted(n["id"] for n in pieces)
    assert {e["args"]["holder"] for e in settled} == {n["holder"] for n in pieces}
    assert sum(e["args"]["value"] for e in settled) == demo_story.FACE_VALUE
    assert len(events(o, "PayableSettled")) == 1
    # The clearing agent recorded all but the last, which the core recorded itself.
    by = [s["by"] for s in o.result.settlements]
    assert by == [o.result.members["clearing"].name] * (len(by) - 1) + [
        o.result.members["core"].name
    ]


async def check_conservation_at_every_level(o: Outcome) -> None:
    pieces = nodes(o.result)
    face = o.result.payable["face_value"]
    # What each piece was made with: the root the face value, the others their split's value.
    made = {e["args"]["claimId"]: e["args"]["value"] for e in events(o, "ClaimSplit")}
    root = o.result.tree["root"]
    made[root["id"]] = face
    assert set(made) == {n["id"] for n in pieces}
    assert all(n["amount"] > 0 for n in pieces)
    assert sum(n["amount"] for n in pieces) == face

    def subtree(node: dict[str, Any]) -> int:
        total: int = node["amount"] + sum(subtree(c) for c in node["children"])
        # A piece and everything split off it add up to what it was made with.
        assert total == made[node["id"]], node["id"]
        return total

    assert subtree(root) == face
    deepest = max(n["depth"] for n in pieces)
    for level in range(deepest + 1):
        # Cut the tree below `level`: the pieces above the cut and what left them across it.
        kept = sum(n["amount"] for n in pieces if n["depth"] <= level)
        crossing = sum(made[n["id"]] for n in pieces if n["depth"] == level + 1)
        assert kept + crossing == face, level


async def check_depths_zero_to_three(o: Outcome) -> None:
    pieces = nodes(o.result)
    assert {n["depth"] for n in pieces} == {0, 1, 2, 3}
    for n in pieces:
        for c in n["children"]:
            assert c["depth"] == n["depth"] + 1
            assert c["parent_id"] == n["id"]
    members = o.result.members
    by_holder = {n["holder"]: n for n in pieces}
    assert by_holder[members["tier1"].address]["depth"] == 0
    assert by_holder[members["tier2a"].address]["depth"] == 1
    assert by_holder[members["tier3a"].address]["depth"] == 2
    # The bank's piece from tier 3's financing is the deepest; every transfer down the tiers
    # cited a trade invoice.
    bank = members["bank"].address
    assert sorted(n["depth"] for n in pieces if n["holder"] == bank) == [1, 3]
    tiers = [n for n in pieces if n["depth"] > 0 and n["holder"] != bank]
    assert all(n["invoice_id"] for n in tiers)


def _approved_tx(o: Outcome, financing_id: int) -> str:
    found = [e for e in events(o, "FinancingApproved") if e["args"]["financingId"] == financing_id]
    assert len(found) == 1, found
    tx: str = found[0]["tx_hash"]
    return tx


async def check_auto_approval_without_a_person(o: Outcome) -> None:
    auto = o.result.auto
    assert auto.status == "approved"
    assert auto.seconds_to_decision < 10  # the policy polls every half second
    # The worker notes its decision just after the approval is mined: read it now.
    now = await o.auditor_get(f"/v1/financing-requests/{auto.id}")
    assert now["status"] == "approved"
    assert now["auto_decision"]["outcome"] == "approved"
    assert now["auto_decision"]["tx_hash"] == _approved_tx(o, auto.id)
    assert auto.quote is not None
    assert auto.quote["auto_approval"]["would_approve"] is True
    r = auto.record
    assert r["advance"] + r["discount"] + r["fees"] == r["amount"] == demo_story.AUTO_FINANCING[1]
    assert r["annual_rate_bps"] == demo_story.RATE_BPS
    # its own number under the credit line's programme (a number backs one financing only)
    assert r["registration_no"].startswith("ZD-LINE-")
    assert r["registration_no"].endswith(f"-{auto.id}")
    # applied from the quote: by default the applicant committed to the quote's advance (or
    # more, had a day passed since the quote) and the approval gave at least that
    assert r["advance"] >= r["min_advance"] >= auto.quote["advance"]
    # No person approved it: the platform prepared the approval, the self bank's own signer
    # signed it, and the only write that carries the transaction is that signature.
    tx = _approved_tx(o, auto.id)
    carrying = [rec for rec in o.log if tx in rec["tx_hashes"]]
    assert [rec["path"].split("/")[-1] for rec in carrying] == ["signature"]
    assert carrying[0]["member"] == o.result.members["bank"].address
    # The policy's own approval is audited under the auto-approval key: it stopped at the
    # self bank's intent (202); no person's key asked for it.
    prepared = [rec for rec in o.log if rec["path"].endswith(f"/{auto.id}/approve")]
    assert [(rec["api_key_id"], rec["status"]) for rec in prepared] == [("auto-approval", 202)]


async def check_manual_approval(o: Outcome) -> None:
    manual = o.result.manual
    assert manual.status == "approved"
    r = manual.record
    assert r["advance"] + r["discount"] + r["fees"] == r["amount"] == demo_story.MANUAL_FINANCING[1]
    assert r["registration_no"].startswith("ZD")
    assert manual.quote is not None
    # Above the policy's limit: the quote said so, and the policy left it for a person.
    assert manual.quote["auto_approval"]["would_approve"] is False
    assert r["auto_decision"]["outcome"] == "declined"
    # The officer's approval answered an intent (the bank is self custody); the bank's
    # signature relayed it: that record carries the transaction.
    tx = _approved_tx(o, manual.id)
    bank = o.result.members["bank"].address
    asked = [rec for rec in o.log if rec["path"] == f"/v1/financing-requests/{manual.id}/approve"]
    assert [(rec["member"], rec["status"]) for rec in asked] == [(bank, 202)]
    approvals = [rec for rec in o.log if tx in rec["tx_hashes"]]
    assert len(approvals) == 1
    assert approvals[0]["member"] == bank
    assert approvals[0]["path"].startswith("/v1/intents/")
    assert approvals[0]["status"] == 200


def _row(rows: list[dict[str, Any]], obligor: str) -> dict[str, Any]:
    found = [r for r in rows if r["obligor"] == obligor]
    assert len(found) == 1, rows
    return found[0]


async def check_exposure(o: Outcome) -> None:
    res = o.result
    core, bank = res.members["core"].address, res.members["bank"].address
    before = _row(res.exposure_before, core)
    assert before["financier"] is None
    assert before["program_limit"] == demo_story.PROGRAM_LIMIT
    assert before["issued"] == before["outstanding"] == demo_story.FACE_VALUE
    assert before["overdue"] == 0
    assert before["financed"] == FINANCED
    bank_before = _row(res.bank_exposure_before, core)
    assert bank_before["financier"] == bank
    assert bank_before["financed"] == FINANCED
    assert bank_before["exposure_limit"] == demo_story.CREDIT_LINE
    # Paid at maturity: nothing outstanding, nothing financed, the limits unchanged.
    after = _row(res.exposure_after, core)
    assert after["issued"] == demo_story.FACE_VALUE
    assert after["outstanding"] == after["overdue"] == after["financed"] == 0
    assert after["program_limit"] == demo_story.PROGRAM_LIMIT
    bank_after = _row(res.bank_exposure_after, core)
    assert bank_after["financed"] == 0
    assert bank_after["exposure_limit"] == demo_story.CREDIT_LINE
    assert len(events(o, "ExposureReleased")) == 2  # the two financed pieces, when paid


async def check_reconciliation(o: Outcome) -> None:
    rec = o.result.reconciliation
    assert rec["ok"] is True
    assert rec["differences_total"] == 0
    assert rec["differences"] == []
    assert rec["checked"]
    assert sum(rec["checked"].values()) >= len(nodes(o.result)) + len(demo_story.CAST)
    # Asked again now, still equal (and at a checkpoint at least as recent).
    again = await o.auditor_get("/v1/audit/reconciliation")
    assert again["ok"] is True
    assert again["block_number"] >= rec["block_number"]


async def check_audit_log(o: Outcome) -> None:
    verified = o.result.audit_log
    assert verified["ok"] is True
    assert verified["first_bad_seq"] is None
    assert verified["records"] == len(o.log)
    # Every write of the story left one record (AP-3), all of them accepted.
    story_writes = (
        len(demo_story.CAST) + 1  # members, the program limit
        + 1  # tier 1 registers its webhook
        + 2 * 2 + 1  # two invoices registered and confirmed, the payable
        + 3 * len(demo_story.SPLITS)  # a trade invoice registered and confirmed, the split
        + 2 + 2 + 1  # credit line and policy, two applications, one approval by hand
        + 1  # the operator moves the local chain's clock past the due date
        + len(o.result.settlements)
        + SELF_SIGNATURES  # each write of a self member, then its signature
        + 1  # the auto-approval's own approval for the self bank, awaiting its signature
    )  # fmt: skip
    assert len(o.log) == story_writes, "; ".join(f"{r['method']} {r['path']}" for r in o.log)
    assert all(200 <= rec["status"] < 300 for rec in o.log), [
        (rec["path"], rec["status"], rec["code"]) for rec in o.log if rec["status"] >= 300
    ]
    again = await o.auditor_get("/v1/audit/log/verify")
    assert again["ok"] is True
    assert again["records"] == verified["records"]


#: The writes of the story's self members that go on chain, each signed once: the tier-2
#: supplier's trade invoice (registered), the tier-3 supplier's invoice it confirms and its
#: split; the bank's credit line, the approval its signer signs and the one its officer makes.
SELF_SIGNATURES = 3 + 3


async def check_self_custody(o: Outcome) -> None:
    """Two members hold their own keys: the chain names their addresses as the actors, the
    relayer sent the transactions, the tree shows their custody, the platform keeps no key."""
    members = o.result.members
    own = {role: members[role].address for role in demo_story.SELF_CUSTODY}
    assert {members[role].custody for role in own} == {"self"}
    assert {members[role].custody for role in members if role not in own} == {"hosted"}
    splits = [e for e in events(o, "ClaimSplit") if e["args"]["from"] == own["tier2a"]]
    assert len(splits) == 1
    relayed = rpc_call(o.stack.rpc_url, "eth_getTransactionByHash", [splits[0]["tx_hash"]])
    assert relayed["from"].lower() != own["tier2a"].lower()
    approved = {e["args"]["financingId"]: e for e in events(o, "FinancingApproved")}
    for financing in (o.result.auto, o.result.manual):
        assert approved[financing.id]["args"]["financier"] == own["bank"]
    custody = {n["holder"]: n.get("holder_custody") for n in nodes(o.result)}
    assert custody[own["tier2a"]] == custody[own["bank"]] == "self"
    assert custody[members["tier1"].address] == "hosted"
    engine = create_engine(o.stack.database_url)
    try:
        async with sessions(engine)() as session:
            held = await session.execute(
                select(KeystoreEntry.address).where(KeystoreEntry.address.in_(own.values()))
            )
            assert list(held.scalars()) == []
    finally:
        await engine.dispose()


CHECKS: tuple[Callable[[Outcome], Awaitable[None]], ...] = (
    check_every_piece_settled,
    check_conservation_at_every_level,
    check_depths_zero_to_three,
    check_auto_approval_without_a_person,
    check_manual_approval,
    check_exposure,
    check_reconciliation,
    check_audit_log,
    check_self_custody,
)


@pytest.mark.parametrize("check", CHECKS, ids=[c.__name__.removeprefix("check_") for c in CHECKS])
async def test_scenario_on_sqlite(
    sqlite_outcome: Outcome, check: Callable[[Outcome], Awaitable[None]]
) -> None:
    await check(sqlite_outcome)


async def test_the_demo_draws_the_tree_and_the_exposure(
    sqlite_outcome: Outcome, tmp_path: Path
) -> None:
    out = tmp_path / "picture.txt"
    with out.open("w") as handle:
        Console(file=handle, width=140, color_system=None).print(
            demo_view.render(sqlite_outcome.result)
        )
    text = out.read_text()
    for role, name, _ in demo_story.CAST:
        if role not in ("auditor", "clearing"):
            assert name in text, name  # every holder of a piece appears in the tree
    assert demo_view.money(demo_story.FACE_VALUE) in text
    assert "Exposure: before maturity → after settlement" in text
    assert f"{demo_view.money(FINANCED)} → ¥0" in text  # the bank's exposure, paid off
    assert "0 differences" in text
    assert "events received and verified" in text
    _webhook_delivered(sqlite_outcome.result)


def _webhook_delivered(result: DemoResult) -> None:
    """Tier 1's webhook got what it may see, every delivery verified and succeeded."""
    hook = result.webhook
    assert hook["received"] > 0, hook
    assert hook["forged"] == 0, hook
    assert set(hook["deliveries"]) == {"succeeded"}, hook
    assert {"ClaimSplit", "PayableIssued", "PayableSettled"} <= set(hook["types"]), hook


@pytest.mark.postgres
async def test_scenario_on_postgres(tmp_path: Path) -> None:
    name = await create_pg_database()
    try:
        url = f"postgresql+asyncpg://root@127.0.0.1:5432/{name}"
        async with Stack.start(tmp_path / "stack", database_url=url, webhooks=True) as stack:
            outcome = await play(stack, tmp_path / "demo.out")
            _webhook_delivered(outcome.result)
            for check in CHECKS:
                await check(outcome)
    finally:
        await drop_pg_database(name)
