"""Sample data shaped like the API's answers, for the console's tests and its render benchmark
(``bench/console_render.py``): members with names and custody, a small demo payable whose tree
shows every mark, large trees of any shape, and rows for the other pages."""

from __future__ import annotations

import hashlib
import random
from typing import Any

from backend.console import Console

PAYABLE_ID = 7
DUE = "2026-09-30T00:00:00Z"


def address(n: int) -> str:
    """A deterministic, valid checksum-free 0x address (the console does not checksum)."""
    return "0x" + hashlib.sha256(f"member-{n}".encode()).hexdigest()[:40]


def tx_hash(n: int) -> str:
    return "0x" + hashlib.sha256(f"tx-{n}".encode()).hexdigest()


def invoice_id(n: int) -> str:
    return "0x" + hashlib.sha256(f"invoice-{n}".encode()).hexdigest()


CORE = address(1)
FINANCIER_A = address(2)
FINANCIER_B = address(3)
CLEARING = address(4)
SUPPLIER_NAMES = [
    "华东精密制造有限公司",
    "Ningbo Harbour Logistics Co.",
    "苏州恒达电子元件厂",
    "Shenzhen Brightpath Components",
    "嘉兴联创包装材料有限公司",
    "Wuxi Precision Castings",
    "常州新材料科技有限公司",
    "Hefei Coil & Wire Works",
]
SUPPLIERS = [address(10 + i) for i in range(len(SUPPLIER_NAMES))]

MEMBERS: dict[str, dict[str, Any]] = {
    CORE: {
        "name": "上汽零部件集团 (SAIC Parts Group)",
        "custody": "hosted",
        "roles": ["core_enterprise"],
    },
    FINANCIER_A: {"name": "招商银行 上海分行", "custody": "self", "roles": ["financier"]},
    FINANCIER_B: {"name": "Everbright Factoring Ltd.", "custody": "hosted", "roles": ["financier"]},
    CLEARING: {"name": "工商银行 清分中心", "custody": "hosted", "roles": ["clearing_agent"]},
}
for i, name in enumerate(SUPPLIER_NAMES):
    MEMBERS[SUPPLIERS[i]] = {
        "name": name,
        "custody": "self" if i % 3 == 0 else "hosted",
        "roles": ["supplier"],
    }

AUDITOR = {"address": address(90), "name": "普华审计 (Audit team)", "roles": ["auditor"]}


def node(
    piece_id: int,
    parent: dict[str, Any] | None,
    holder: str,
    amount: int,
    status: str = "active",
    *,
    locked: int = 0,
    frozen: bool | None = None,
    financed: bool | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": piece_id,
        "parent_id": None if parent is None else parent["id"],
        "depth": 0 if parent is None else parent["depth"] + 1,
        "holder": holder,
        "amount": amount,
        "locked_amount": locked,
        "status": status,
        "invoice_id": None if parent is None else invoice_id(piece_id),
        "child_count": 0,
        "truncated": False,
        "children": [],
        "tx_hash": tx_hash(piece_id),
    }
    if frozen is not None:
        out["frozen"] = frozen
    if financed is not None:
        out["financed"] = financed
    if parent is not None:
        parent["children"].append(out)
        parent["child_count"] += 1
    return out


def demo_tree() -> dict[str, Any]:
    """The demo's payable #7: 13 pieces over three tiers, every mark present."""
    s = SUPPLIERS
    root = node(30, None, s[0], 180_000_000)  # ¥1,800,000.00 kept by the tier-1 supplier
    a = node(31, root, s[1], 320_000_000, locked=120_000_000)
    b = node(32, root, s[2], 250_000_055, "financed", financed=True)
    c = node(33, root, FINANCIER_A, 400_000_000, "financed")
    d = node(34, root, s[3], 90_000_000, "settled")
    node(35, a, s[4], 75_500_000)
    node(36, a, s[5], 42_000_001, "frozen")
    e = node(37, a, s[6], 60_000_000)
    node(38, e, FINANCIER_B, 20_000_000, "financed")
    node(39, e, s[7], 9_999_999, "locked", locked=9_999_999)
    node(40, b, s[5], 12_345_678)
    node(41, d, s[6], 8_000_000, "settled")
    node(42, c, FINANCIER_B, 100_000_000, "frozen", financed=True)
    return {"payable_id": PAYABLE_ID, "from_claim_id": 30, "node_count": 13, "root": root}


def tree_total(tree: dict[str, Any]) -> int:
    total = 0
    stack = [tree["root"]]
    while stack:
        n = stack.pop()
        total += n["amount"]
        stack.extend(n["children"])
    return total


def demo_payable() -> dict[str, Any]:
    face = tree_total(demo_tree())
    return {
        "id": PAYABLE_ID,
        "obligor": CORE,
        "supplier": SUPPLIERS[0],
        "face_value": face,
        "settled_value": 98_000_000,
        "outstanding_value": face - 98_000_000,
        "due_date": DUE,
        "issued_at": "2026-03-02T09:30:00Z",
        "invoice_ids": [invoice_id(1)],
        "clearing_agent": CLEARING,
        "status": "issued",
        "root_claim_id": 30,
        "long_term": True,
        "issued_block": 118,
    }


STATUS_MIX = [("active", 60), ("financed", 12), ("locked", 8), ("settled", 14), ("frozen", 6)]


def big_tree(pieces: int, shape: str, seed: int = 12) -> dict[str, Any]:
    """A tree of ``pieces`` pieces: ``deep`` (a chain), ``wide`` (the root and its children),
    ``bushy`` (each new piece split from a random earlier one: a few pieces split often, as
    tier-1 suppliers do) or ``tiers`` (fan-out 10 per level)."""
    rnd = random.Random(seed)
    holders = [*SUPPLIERS, FINANCIER_A, FINANCIER_B]
    statuses = [s for s, _ in STATUS_MIX]
    weights = [w for _, w in STATUS_MIX]
    root = node(1, None, SUPPLIERS[0], rnd.randrange(10_000, 10**9))
    nodes = [root]
    for i in range(2, pieces + 1):
        if shape == "deep":
            parent = nodes[-1]
        elif shape == "wide":
            parent = root
        elif shape == "bushy":
            parent = nodes[rnd.randrange(len(nodes))]
        elif shape == "tiers":
            parent = nodes[(i - 2) // 10]
        else:
            raise ValueError(shape)
        status = rnd.choices(statuses, weights)[0]
        amount = rnd.randrange(1, 10**9)
        holder = rnd.choice(holders[:-2]) if status != "financed" else rnd.choice(holders[-2:])
        locked = rnd.randrange(1, amount + 1) if status == "locked" else 0
        nodes.append(node(i, parent, holder, amount, status, locked=locked))
    return {"payable_id": PAYABLE_ID, "from_claim_id": 1, "node_count": pieces, "root": root}


def exposure_rows() -> list[dict[str, Any]]:
    other = address(5)
    third = address(6)
    MEMBERS.setdefault(other, {"name": "Hangzhou Grand Appliances", "custody": "hosted"})
    MEMBERS.setdefault(third, {"name": "中远海运物流 (COSCO Logistics)", "custody": "self"})
    rows: list[dict[str, Any]] = [
        {
            "obligor": CORE,
            "obligor_name": MEMBERS[CORE]["name"],
            "financier": None,
            "program_limit": 5_000_000_000,
            "issued": 3_950_000_000,
            "outstanding": 3_120_000_000,
            "overdue": 0,
            "financed": 1_420_000_055,
            "exposure_limit": None,
        },
        {
            "obligor": other,
            "obligor_name": None,
            "financier": None,
            "program_limit": 2_000_000_000,
            "issued": 2_150_000_000,
            "outstanding": 1_880_000_000,
            "overdue": 310_000_000,
            "financed": 640_000_000,
            "exposure_limit": None,
        },
        {
            "obligor": third,
            "obligor_name": None,
            "financier": None,
            "program_limit": 800_000_000,
            "issued": 120_000_000,
            "outstanding": 120_000_000,
            "overdue": 0,
            "financed": 0,
            "exposure_limit": None,
        },
        {
            "obligor": CORE,
            "obligor_name": None,
            "financier": FINANCIER_A,
            "program_limit": None,
            "issued": None,
            "outstanding": None,
            "overdue": None,
            "financed": 900_000_000,
            "exposure_limit": 1_500_000_000,
        },
        {
            "obligor": other,
            "obligor_name": None,
            "financier": FINANCIER_A,
            "program_limit": None,
            "issued": None,
            "outstanding": None,
            "overdue": None,
            "financed": 640_000_000,
            "exposure_limit": 600_000_000,
        },
        {
            "obligor": CORE,
            "obligor_name": None,
            "financier": FINANCIER_B,
            "program_limit": None,
            "issued": None,
            "outstanding": None,
            "overdue": None,
            "financed": 520_000_055,
            "exposure_limit": None,
        },
    ]
    for row in rows:  # as the API computes it (backend/services/exposure.py)
        if row["financier"] is None:
            row["over_limit"] = row["outstanding"] > row["program_limit"]
        else:
            limit = row["exposure_limit"]
            row["over_limit"] = limit is not None and row["financed"] > limit
    return rows


def events() -> list[dict[str, Any]]:
    base = {"block_hash": "0x" + "11" * 32, "log_index": 0}
    return [
        {
            **base,
            "block_number": 118,
            "block_time": "2026-03-02T09:30:00Z",
            "tx_hash": tx_hash(30),
            "contract": "ClaimLedger",
            "event": "PayableIssued",
            "args": {
                "payableId": PAYABLE_ID,
                "obligor": CORE,
                "supplier": SUPPLIERS[0],
                "rootClaimId": 30,
                "faceValue": 1_567_845_733,
                "dueDate": 1790726400,
                "clearingAgent": CLEARING,
                "invoiceIds": [invoice_id(1)],
                "longTerm": True,
            },
        },
        {
            **base,
            "block_number": 121,
            "log_index": 3,
            "block_time": "2026-03-03T02:11:09Z",
            "tx_hash": tx_hash(31),
            "contract": "ClaimLedger",
            "event": "ClaimSplit",
            "args": {
                "parentId": 30,
                "claimId": 31,
                "payableId": PAYABLE_ID,
                "from": SUPPLIERS[0],
                "to": SUPPLIERS[1],
                "value": 320_000_000,
                "depth": 1,
                "invoiceId": invoice_id(31),
            },
        },
        {
            **base,
            "block_number": 130,
            "log_index": 1,
            "block_time": "2026-03-05T06:40:00Z",
            "tx_hash": tx_hash(131),
            "contract": "FinancingDesk",
            "event": "FinancingApplied",
            "args": {
                "financingId": 4,
                "claimId": 31,
                "applicant": SUPPLIERS[1],
                "financier": FINANCIER_A,
                "amount": 120_000_000,
                "expiresAt": 1773300000,
            },
        },
        {
            **base,
            "block_number": 140,
            "block_time": "2026-03-09T01:00:00Z",
            "tx_hash": tx_hash(140),
            "contract": "ClaimLedger",
            "event": "ClaimFrozen",
            "args": {"claimId": 36, "reasonHash": "0x" + "ab" * 32},
        },
    ]


def audit_records(count: int = 6) -> list[dict[str, Any]]:
    out = []
    prev = "0" * 64
    for seq in range(1, count + 1):
        h = hashlib.sha256(f"{prev}{seq}".encode()).hexdigest()
        out.append(
            {
                "seq": seq,
                "at": f"2026-03-0{1 + seq % 9}T08:{seq:02d}:00.000Z",
                "member": SUPPLIERS[seq % 3] if seq != 4 else None,
                "api_key_id": f"key{seq}",
                "method": "POST",
                "path": f"/v1/claims/{30 + seq}/transfers",
                "status": 201 if seq != 4 else 401,
                "code": None if seq != 4 else "unauthorized",
                "idempotency_key": f"idem-{seq}",
                "request_sha256": hashlib.sha256(str(seq).encode()).hexdigest(),
                "tx_hashes": [tx_hash(200 + seq)] if seq != 4 else [],
                "prev_hash": prev,
                "hash": h,
            }
        )
        prev = h
    return out


def reconciliation(ok: bool = False) -> dict[str, Any]:
    diffs = [
        {"kind": "claim", "key": "36", "field": "status", "mirror": "active", "chain": "frozen"},
        {"kind": "claim", "key": "39", "field": "locked_amount", "mirror": 0, "chain": 9_999_999},
    ]
    return {
        "block_number": 4_210,
        "block_hash": "0x" + "5e" * 32,
        "checked": {"member": 14, "invoice": 52, "payable": 9, "claim": 131, "financing": 17},
        "ok": ok,
        "differences": [] if ok else diffs,
        "differences_total": 0 if ok else 2,
    }


def member_home() -> dict[str, Any]:
    me = SUPPLIERS[1]
    return {
        "member": {
            "address": me,
            "name": MEMBERS[me]["name"],
            "roles": ["supplier"],
            "status": "active",
            "custody": "self",
            "kyc_expires_at": "2027-01-31T00:00:00Z",
        },
        "claims": [
            {
                "id": 31,
                "payable_id": PAYABLE_ID,
                "parent_id": 30,
                "depth": 1,
                "holder": me,
                "obligor": CORE,
                "amount": 320_000_000,
                "locked_amount": 120_000_000,
                "available_amount": 200_000_000,
                "status": "active",
                "frozen": False,
                "financed": False,
                "due_date": DUE,
            },
            {
                "id": 55,
                "payable_id": 9,
                "parent_id": 50,
                "depth": 2,
                "holder": me,
                "obligor": CORE,
                "amount": 4_500_001,
                "locked_amount": 0,
                "available_amount": 4_500_001,
                "status": "frozen",
                "frozen": True,
                "financed": False,
                "due_date": "2026-07-31T00:00:00Z",
            },
        ],
        "financing": [
            {
                "id": 4,
                "claim_id": 31,
                "applicant": me,
                "financier": FINANCIER_A,
                "obligor": CORE,
                "amount": 120_000_000,
                "status": "applied",
                "expires_at": "2026-03-12T06:40:00Z",
                "advance": None,
            }
        ],
        "intents": [
            {
                "id": "int_7f3a9c2e55d1",
                "status": "open",
                "member": me,
                "expires_at": "2026-03-05T18:00:00Z",
                "action": {
                    "contract": "ClaimLedger",
                    "function": "split",
                    "args": {
                        "fromId": 31,
                        "to": SUPPLIERS[4],
                        "value": 50_000_000,
                        "invoiceId": "0x" + "00" * 32,
                    },
                },
            },
            {
                "id": "int_0b44e1aa9f20",
                "expires_at": "2026-03-06T09:00:00Z",
                "action": {
                    "contract": "FinancingDesk",
                    "function": "withdraw",
                    "args": {"financingId": 4},
                },
            },
        ],
        "approvals": [
            {
                "id": "apr_5c0ffee0d15ea5e1",
                "member": me,
                "status": "pending",
                "operation": "claims.transfer",
                "arguments": {"claim_id": 31, "to": SUPPLIERS[4], "amount": 20_000_000},
                "method": "POST",
                "path": "/v1/claims/31/transfers",
                "maker_user_id": "usr_0a1b2c3d4e5f6a7b",
                "maker_key_id": "key_0a1b2c3d4e5f6a7b",
                "checker_user_id": None,
                "checker_key_id": None,
                "reason": None,
                "created_at": "2026-03-05T09:30:00Z",
                "decided_at": None,
            }
        ],
    }


def all_pages(console: Console, members: dict[str, Any] | None = None) -> dict[str, str]:
    members = members or MEMBERS
    viewer = AUDITOR
    home = member_home()
    return {
        "tree": console.tree_page(
            demo_tree(), payable=demo_payable(), viewer=viewer, members=members
        ),
        "claim": console.claim_page(
            home["claims"][0], events()[1:3], viewer=viewer, members=members
        ),
        "tx": console.tx_page(tx_hash(31), events()[1:2], viewer=viewer, members=members),
        "exposure": console.exposure_page(exposure_rows(), viewer=viewer, members=members),
        "events": console.events_page(
            events(),
            filters={"payable_id": 7},
            next_cursor="c1",
            viewer=viewer,
            members=members,
        ),
        "reconciliation": console.reconciliation_page(
            reconciliation(), checked_at="2026-03-09T10:00:00Z", viewer=viewer
        ),
        "audit": console.audit_log_page(
            audit_records(),
            verification={"ok": False, "records": 3, "first_bad_seq": 4, "reason": "bad hash"},
            viewer=viewer,
            members=members,
        ),
        "home": console.home_page(
            home["member"],
            claims=home["claims"],
            financing=home["financing"],
            intents=home["intents"],
            approvals=home["approvals"],
            viewer=home["member"],
            members=members,
        ),
        "sign-in": console.sign_in_page(error="That key is not valid."),
        "404": console.error_page(404, viewer=viewer),
        "403": console.error_page(403, viewer=viewer),
    }
