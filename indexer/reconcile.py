"""Reconciliation (IX-5): every mirrored object against the contracts' views.

:func:`reconcile` reads the checkpoint and every mirrored row in one read transaction, then
asks the contracts for the same objects *at the checkpoint block* (``eth_call`` in JSON-RPC
batches) and lists every field that differs, plus object counts that differ (a row the
mirror lacks). ``tierflow reconcile`` prints the report and exits non-zero on differences;
the API serves the same report.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from db.types import table_of
from indexer import models
from indexer.errors import IndexerError
from indexer.store import read_checkpoint
from ledger.artifacts import load_artifact
from ledger.bindings import ClaimStatus, FinancingStatus, InvoiceStatus, MemberStatus, PayableStatus
from ledger.codec import checksum
from ledger.jsonrpc import RpcClient

BATCH = 400
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
ZERO_HASH = "0x" + "00" * 32


@dataclass(frozen=True)
class Difference:
    """One field of one object where the mirror and the chain disagree."""

    kind: str  # "claim", "payable", … or "count"
    key: str
    field: str
    mirror: Any
    chain: Any


@dataclass
class ReconciliationReport:
    """The outcome: the block compared at, how many objects, and every difference."""

    block_number: int
    block_hash: str
    checked: dict[str, int] = field(default_factory=dict)
    differences: list[Difference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences

    def as_dict(self) -> dict[str, Any]:
        return {
            "block_number": self.block_number,
            "block_hash": self.block_hash,
            "checked": dict(self.checked),
            "differences": [d.__dict__ for d in self.differences],
        }


def _type(param: dict[str, Any]) -> str:
    kind: str = param["type"]
    if kind.startswith("tuple"):
        return "(" + ",".join(_type(c) for c in param["components"]) + ")" + kind[5:]
    return kind


class _Views:
    """ABI-encodes view calls of the suite and decodes their answers."""

    def __init__(self, addresses: dict[str, str]) -> None:
        self._functions: dict[tuple[str, str], tuple[str, bytes, list[str], list[str]]] = {}
        for contract, address in addresses.items():
            for item in load_artifact(contract).abi:
                if item.get("type") != "function":
                    continue
                inputs = [_type(i) for i in item["inputs"]]
                outputs = [_type(o) for o in item["outputs"]]
                selector = keccak(text=f"{item['name']}({','.join(inputs)})")[:4]
                self._functions[(contract, item["name"])] = (address, selector, inputs, outputs)

    def call(self, contract: str, function: str, *args: Any) -> tuple[str, bytes, list[str]]:
        address, selector, inputs, outputs = self._functions[(contract, function)]
        return address, selector + abi_encode(inputs, list(args)), outputs


Compare = Callable[[Any, tuple[Any, ...]], list[tuple[str, Any, Any]]]


@dataclass
class _Check:
    kind: str
    key: str
    call: tuple[str, bytes, list[str]]
    compare: Compare
    mirrored: Any = None  # what compare() gets with the decoded answer


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def _addr(value: str) -> str | None:
    return None if int(value, 16) == 0 else checksum(value)


def _diff(pairs: Sequence[tuple[str, Any, Any]]) -> list[tuple[str, Any, Any]]:
    return [(name, mine, theirs) for name, mine, theirs in pairs if mine != theirs]


async def reconcile(engine: AsyncEngine, rpc: RpcClient) -> ReconciliationReport:
    """Compare the whole mirror with the contracts' views at the mirror's checkpoint."""
    async with engine.connect() as conn, conn.begin():
        checkpoint = await read_checkpoint(conn)
        if checkpoint is None:
            raise IndexerError("the mirror is empty: run the indexer first")
        rows: dict[str, list[dict[str, Any]]] = {}
        for model in (
            models.Member,
            models.RoleGrant,
            models.Invoice,
            models.Payable,
            models.PayableInvoice,
            models.Claim,
            models.Financing,
            models.ObligorAccount,
            models.Exposure,
            models.PlatformState,
        ):
            table = table_of(model)
            rows[table.name] = [dict(r) for r in (await conn.execute(select(table))).mappings()]
    views = _Views(checkpoint.deployment)
    report = ReconciliationReport(checkpoint.block_number, checkpoint.block_hash)
    checks = _checks(views, rows)
    block = hex(checkpoint.block_number)

    for kind in {c.kind for c in checks}:
        report.checked[kind] = sum(1 for c in checks if c.kind == kind)
    for start in range(0, len(checks), BATCH):
        chunk = checks[start : start + BATCH]
        answers = await rpc.batch(
            [("eth_call", [{"to": c.call[0], "data": _hex(c.call[1])}, block]) for c in chunk]
        )
        for check, answer in zip(chunk, answers, strict=True):
            decoded = abi_decode(check.call[2], bytes.fromhex(answer[2:]))
            for name, mine, theirs in check.compare(check.mirrored, decoded):
                report.differences.append(Difference(check.kind, check.key, name, mine, theirs))
    return report


def _checks(views: _Views, rows: dict[str, list[dict[str, Any]]]) -> list[_Check]:
    checks: list[_Check] = []
    add = checks.append

    counts = {
        ("ClaimLedger", "payableCount"): len(rows["payables"]),
        ("ClaimLedger", "claimCount"): len(rows["claims"]),
        ("FinancingDesk", "financingCount"): len(rows["financings"]),
    }
    for (contract, function), mirrored in counts.items():
        add(
            _Check(
                "count",
                function,
                views.call(contract, function),
                lambda m, out: _diff([("count", m, out[0])]),
                mirrored,
            )
        )
    paused = next(
        (r["value"] == "true" for r in rows["platform_state"] if r["key"] == "paused"), False
    )
    add(
        _Check(
            "platform",
            "paused",
            views.call("MemberRegistry", "paused"),
            lambda m, out: _diff([("paused", m, out[0])]),
            paused,
        )
    )

    for m in rows["members"]:
        add(
            _Check(
                "member",
                m["address"],
                views.call("MemberRegistry", "member", m["address"]),
                lambda m, out: _diff(
                    [
                        ("status", m["status"], MemberStatus(out[0][0]).name.lower()),
                        ("kyc_expires_at", m["kyc_expires_at"], out[0][1]),
                    ]
                ),
                m,
            )
        )
        add(
            _Check(
                "member",
                m["address"],
                views.call("MemberRegistry", "rolesOf", m["address"]),
                lambda m, out: _diff([("roles", m["roles"], out[0])]),
                m,
            )
        )
    for g in rows["role_grants"]:
        add(
            _Check(
                "role_grant",
                f"{g['role']}:{g['account']}",
                views.call("MemberRegistry", "hasRole", bytes.fromhex(g["role"][2:]), g["account"]),
                lambda _, out: _diff([("granted", True, out[0])]),
                None,
            )
        )
    for i in rows["invoices"]:
        add(
            _Check(
                "invoice",
                i["id"],
                views.call("InvoiceRegistry", "invoice", bytes.fromhex(i["id"][2:])),
                lambda i, out: _diff(
                    [
                        ("seller", i["seller"], checksum(out[0][0])),
                        ("issue_date", i["issue_date"], out[0][1]),
                        ("status", i["status"], InvoiceStatus(out[0][2]).name.lower()),
                        ("buyer", i["buyer"], checksum(out[0][3])),
                        ("payable_id", i["payable_id"], out[0][4] or None),
                        ("amount", i["amount"], out[0][5]),
                        ("document_hash", i["document_hash"], _hex(out[0][6])),
                    ]
                ),
                i,
            )
        )
    invoices_of: dict[int, list[str]] = {}
    for pi in sorted(rows["payable_invoices"], key=lambda r: (r["payable_id"], r["position"])):
        invoices_of.setdefault(pi["payable_id"], []).append(pi["invoice_id"])
    for p in rows["payables"]:
        add(
            _Check(
                "payable",
                str(p["id"]),
                views.call("ClaimLedger", "getPayable", p["id"]),
                lambda p, out: _diff(
                    [
                        ("obligor", p["obligor"], checksum(out[0][0])),
                        ("due_date", p["due_date"], out[0][1]),
                        ("status", p["status"], PayableStatus(out[0][2]).name.lower()),
                        ("supplier", p["supplier"], checksum(out[0][3])),
                        ("issued_at", p["issued_at"], out[0][4]),
                        ("clearing_agent", p["clearing_agent"], _addr(out[0][5])),
                        ("root_claim_id", p["root_claim_id"], out[0][6]),
                        ("face_value", p["face_value"], out[0][7]),
                        ("settled_value", p["settled_value"], out[0][8]),
                    ]
                ),
                p,
            )
        )
        add(
            _Check(
                "payable",
                str(p["id"]),
                views.call("ClaimLedger", "payableInvoices", p["id"]),
                lambda p, out: _diff(
                    [("invoice_ids", invoices_of.get(p["id"], []), [_hex(x) for x in out[0]])]
                ),
                p,
            )
        )
    for c in rows["claims"]:
        add(
            _Check(
                "claim",
                str(c["id"]),
                views.call("ClaimLedger", "claim", c["id"]),
                lambda c, out: _diff(
                    [
                        ("payable_id", c["payable_id"], out[0][1]),
                        ("parent_id", c["parent_id"], out[0][2] or None),
                        ("depth", c["depth"], out[0][3]),
                        ("holder", c["holder"], checksum(out[0][4])),
                        ("amount", c["amount"], out[0][5]),
                        ("locked_amount", c["locked_amount"], out[0][6]),
                        ("status", c["status"], ClaimStatus(out[0][7]).name.lower()),
                        ("frozen", c["frozen"], out[0][8]),
                        ("financed", c["financed"], out[0][9]),
                        ("due_date", c["due_date"], out[0][10]),
                    ]
                ),
                c,
            )
        )
    for f in rows["financings"]:
        add(
            _Check(
                "financing",
                str(f["id"]),
                views.call("FinancingDesk", "financing", f["id"]),
                lambda f, out: _diff(
                    [
                        ("claim_id", f["claim_id"], out[0][0]),
                        ("applicant", f["applicant"], checksum(out[0][1])),
                        ("status", f["status"], FinancingStatus(out[0][2]).name.lower()),
                        ("recourse", f["recourse"], out[0][3]),
                        ("expires_at", f["expires_at"], out[0][4]),
                        ("financier", f["financier"], checksum(out[0][5])),
                        ("annual_rate_bps", f["annual_rate_bps"], out[0][6]),
                        ("financed_claim_id", f["financed_claim_id"], out[0][7] or None),
                        ("amount", f["amount"], out[0][8]),
                        ("min_advance", f["min_advance"], out[0][9]),
                        ("advance", f["advance"], out[0][10]),
                        ("discount", f["discount"], out[0][11]),
                        ("fees", f["fees"], out[0][12]),
                        ("registration_no", f["registration_no"], _hash_or_none(out[0][13])),
                        ("disbursement_ref", f["disbursement_ref"], _hash_or_none(out[0][14])),
                    ]
                ),
                f,
            )
        )
    for a in rows["obligor_accounts"]:
        add(
            _Check(
                "obligor_account",
                a["obligor"],
                views.call("ClaimLedger", "obligorAccount", a["obligor"]),
                lambda a, out: _diff(
                    [
                        ("program_limit", a["program_limit"], out[0][0]),
                        ("outstanding", a["outstanding"], out[0][1]),
                        ("previous_overdue_at", a["previous_overdue_at"], out[0][2]),
                        ("last_overdue_at", a["last_overdue_at"], out[0][3]),
                    ]
                ),
                a,
            )
        )
    for e in rows["exposures"]:
        add(
            _Check(
                "exposure",
                f"{e['financier']}:{e['obligor']}",
                views.call("FinancingDesk", "exposure", e["financier"], e["obligor"]),
                lambda e, out: _diff(
                    [
                        ("outstanding", e["outstanding"], out[0]),
                        ("exposure_limit", e["exposure_limit"], out[1]),
                    ]
                ),
                e,
            )
        )
    return checks


def _hash_or_none(value: bytes) -> str | None:
    text = _hex(value)
    return None if text == ZERO_HASH else text


__all__ = ["Difference", "ReconciliationReport", "reconcile"]
