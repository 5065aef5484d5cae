"""Event handlers: each applies one contract event to the mirror's rows.

Handlers are keyed ``"Contract:Event"`` and named after the event (``ClaimSplit`` →
``on_claim_split``). They get the :class:`~indexer.unit_of_work.UnitOfWork`, the event and
its block's timestamp, and change rows the way the contract changed its storage, so the
mirror equals the contracts' views after every transaction (I-10, IX-5). Events without a
handler (the ERC-721/3525 compatibility events, admin hand-over) are kept as raw events only.

:func:`prefetch_keys` lists, for a batch, the rows its handlers will touch, so they are loaded
in bulk before the batch is applied.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from indexer.unit_of_work import Key, Row, UnitOfWork
from ledger.codec import DecodedEvent
from ledger.roles import Role

Handler = Callable[[UnitOfWork, DecodedEvent, int], Awaitable[None]]
HANDLERS: dict[str, Handler] = {}

ZERO_HASH = "0x" + "00" * 32
_ROLE_BITS: dict[str, int] = {"0x" + role.role_id.hex(): role.bit for role in Role}


def handles(key: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[key] = fn
        return fn

    return register


def _hash_or_none(value: str) -> str | None:
    return None if value == ZERO_HASH else value


def claim_status(claim: Row) -> str:
    """The contract's ``_status``: cancelled > settled > frozen > financed > locked > active."""
    if claim["status"] in ("cancelled", "settled"):
        return str(claim["status"])
    if claim["frozen"]:
        return "frozen"
    if claim["financed"]:
        return "financed"
    if claim["locked_amount"]:
        return "locked"
    return "active"


def _restatus(claim: Row) -> None:
    claim["status"] = claim_status(claim)


async def _obligor_account(uow: UnitOfWork, obligor: str) -> Row:
    if await uow.get("obligor_accounts", (obligor,)) is None:
        await uow.create(
            "obligor_accounts",
            {
                "obligor": obligor,
                "program_limit": 0,
                "outstanding": 0,
                "previous_overdue_at": 0,
                "last_overdue_at": 0,
            },
        )
    return await uow.edit("obligor_accounts", (obligor,))


async def _exposure(uow: UnitOfWork, financier: str, obligor: str) -> Row:
    if await uow.get("exposures", (financier, obligor)) is None:
        await uow.create(
            "exposures",
            {"financier": financier, "obligor": obligor, "outstanding": 0, "exposure_limit": 0},
        )
    return await uow.edit("exposures", (financier, obligor))


# -- MemberRegistry -------------------------------------------------------------------------


@handles("MemberRegistry:MemberRegistered")
async def on_member_registered(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    account = ev.args["account"]
    roles = 0
    for role_id, bit in _ROLE_BITS.items():
        if await uow.get("role_grants", (role_id, account)) is not None:
            roles |= bit
    await uow.create(
        "members",
        {
            "address": account,
            "status": "active",
            "kyc_expires_at": ev.args["kycExpiresAt"],
            "roles": roles,
            "suspension_reason": None,
            "registered_block": ev.block_number,
        },
    )


@handles("MemberRegistry:MemberKycRenewed")
async def on_member_kyc_renewed(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    member = await uow.edit("members", (ev.args["account"],))
    member["kyc_expires_at"] = ev.args["kycExpiresAt"]


@handles("MemberRegistry:MemberSuspended")
async def on_member_suspended(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    member = await uow.edit("members", (ev.args["account"],))
    member["status"] = "suspended"
    member["suspension_reason"] = ev.args["reasonHash"]


@handles("MemberRegistry:MemberReinstated")
async def on_member_reinstated(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    member = await uow.edit("members", (ev.args["account"],))
    member["status"] = "active"
    member["suspension_reason"] = None


async def _set_role_bit(uow: UnitOfWork, role: str, account: str, granted: bool) -> None:
    bit = _ROLE_BITS.get(role)
    if bit is None or await uow.get("members", (account,)) is None:
        return
    member = await uow.edit("members", (account,))
    member["roles"] = member["roles"] | bit if granted else member["roles"] & ~bit


@handles("MemberRegistry:RoleGranted")
async def on_role_granted(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    role, account = ev.args["role"], ev.args["account"]
    await uow.upsert(
        "role_grants", {"role": role, "account": account, "granted_block": ev.block_number}
    )
    await _set_role_bit(uow, role, account, True)


@handles("MemberRegistry:RoleRevoked")
async def on_role_revoked(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    role, account = ev.args["role"], ev.args["account"]
    await uow.remove("role_grants", (role, account))
    await _set_role_bit(uow, role, account, False)


@handles("MemberRegistry:Paused")
async def on_paused(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    await uow.upsert("platform_state", {"key": "paused", "value": "true"})


@handles("MemberRegistry:Unpaused")
async def on_unpaused(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    await uow.upsert("platform_state", {"key": "paused", "value": "false"})


# -- InvoiceRegistry ------------------------------------------------------------------------


@handles("InvoiceRegistry:InvoiceRegistered")
async def on_invoice_registered(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    a = ev.args
    await uow.create(
        "invoices",
        {
            "id": a["invoiceId"],
            "seller": a["seller"],
            "buyer": a["buyer"],
            "amount": a["amount"],
            "issue_date": a["issueDate"],
            "document_hash": a["documentHash"],
            "status": "registered",
            "payable_id": None,
            "claim_id": None,
            "registered_block": ev.block_number,
        },
    )


@handles("InvoiceRegistry:InvoiceConfirmed")
async def on_invoice_confirmed(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    (await uow.edit("invoices", (ev.args["invoiceId"],)))["status"] = "confirmed"


@handles("InvoiceRegistry:InvoiceVoided")
async def on_invoice_voided(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    (await uow.edit("invoices", (ev.args["invoiceId"],)))["status"] = "voided"


@handles("InvoiceRegistry:InvoiceUsed")
async def on_invoice_used(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    invoice = await uow.edit("invoices", (ev.args["invoiceId"],))
    invoice["status"] = "used"
    invoice["payable_id"] = ev.args["payableId"] or None
    invoice["claim_id"] = ev.args["claimId"] or None


@handles("InvoiceRegistry:InvoiceReleased")
async def on_invoice_released(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    invoice = await uow.edit("invoices", (ev.args["invoiceId"],))
    invoice["status"] = "confirmed"
    invoice["payable_id"] = None


# -- ClaimLedger: payables ------------------------------------------------------------------


@handles("ClaimLedger:PayableIssued")
async def on_payable_issued(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    a = ev.args
    payable_id, face, agent = a["payableId"], a["faceValue"], a["clearingAgent"]
    await uow.create(
        "payables",
        {
            "id": payable_id,
            "obligor": a["obligor"],
            "supplier": a["supplier"],
            "face_value": face,
            "settled_value": 0,
            "due_date": a["dueDate"],
            "issued_at": t,
            "clearing_agent": None if int(agent, 16) == 0 else agent,
            "root_claim_id": a["rootClaimId"],
            "long_term": a["longTerm"],
            "status": "issued",
            "issued_block": ev.block_number,
        },
    )
    await uow.create(
        "claims",
        {
            "id": a["rootClaimId"],
            "payable_id": payable_id,
            "parent_id": None,
            "depth": 0,
            "holder": a["supplier"],
            "amount": face,
            "locked_amount": 0,
            "status": "active",
            "frozen": False,
            "financed": False,
            "due_date": a["dueDate"],
            "invoice_id": None,
            "created_block": ev.block_number,
        },
    )
    for position, invoice_id in enumerate(a["invoiceIds"]):
        uow.append(
            "payable_invoices",
            {
                "payable_id": payable_id,
                "position": position,
                "invoice_id": invoice_id,
                "block_number": ev.block_number,
            },
        )
    account = await _obligor_account(uow, a["obligor"])
    account["outstanding"] += face


@handles("ClaimLedger:PayableCancelled")
async def on_payable_cancelled(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    payable = await uow.edit("payables", (ev.args["payableId"],))
    payable["status"] = "cancelled"
    root = await uow.edit("claims", (ev.args["rootClaimId"],))
    root["status"] = "cancelled"
    account = await _obligor_account(uow, payable["obligor"])
    account["outstanding"] -= payable["face_value"]


@handles("ClaimLedger:PayableOverdue")
async def on_payable_overdue(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    payable = await uow.edit("payables", (ev.args["payableId"],))
    payable["status"] = "overdue"
    account = await _obligor_account(uow, payable["obligor"])
    account["previous_overdue_at"] = account["last_overdue_at"]
    account["last_overdue_at"] = t


@handles("ClaimLedger:PayableSettled")
async def on_payable_settled(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    (await uow.edit("payables", (ev.args["payableId"],)))["status"] = "settled"


@handles("ClaimLedger:ProgramLimitSet")
async def on_program_limit_set(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    account = await _obligor_account(uow, ev.args["obligor"])
    account["program_limit"] = ev.args["programLimit"]


@handles("ClaimLedger:FinancingDeskBound")
async def on_financing_desk_bound(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    await uow.upsert("platform_state", {"key": "financing_desk", "value": ev.args["financingDesk"]})


# -- ClaimLedger: claim pieces --------------------------------------------------------------


@handles("ClaimLedger:ClaimSplit")
async def on_claim_split(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    a = ev.args
    parent = await uow.edit("claims", (a["parentId"],))
    parent["amount"] -= a["value"]
    await uow.create(
        "claims",
        {
            "id": a["claimId"],
            "payable_id": a["payableId"],
            "parent_id": a["parentId"],
            "depth": a["depth"],
            "holder": a["to"],
            "amount": a["value"],
            "locked_amount": 0,
            "status": "active",
            "frozen": False,
            "financed": False,
            "due_date": parent["due_date"],
            "invoice_id": _hash_or_none(a["invoiceId"]),
            "created_block": ev.block_number,
        },
    )


@handles("ClaimLedger:ClaimTransferred")
async def on_claim_transferred(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    claim = await uow.edit("claims", (ev.args["claimId"],))
    claim["holder"] = ev.args["to"]
    # A transfer ends a financier's holding; a financing approval marks it again just after.
    claim["financed"] = False
    _restatus(claim)


@handles("ClaimLedger:ClaimFrozen")
async def on_claim_frozen(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    claim = await uow.edit("claims", (ev.args["claimId"],))
    claim["frozen"] = True
    _restatus(claim)


@handles("ClaimLedger:ClaimUnfrozen")
async def on_claim_unfrozen(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    claim = await uow.edit("claims", (ev.args["claimId"],))
    claim["frozen"] = False
    _restatus(claim)


@handles("ClaimLedger:ClaimSettled")
async def on_claim_settled(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    a = ev.args
    claim = await uow.edit("claims", (a["claimId"],))
    claim["status"] = "settled"
    payable = await uow.edit("payables", (a["payableId"],))
    payable["settled_value"] += a["value"]
    account = await _obligor_account(uow, payable["obligor"])
    account["outstanding"] -= a["value"]
    uow.append(
        "settlements",
        {
            "claim_id": a["claimId"],
            "payable_id": a["payableId"],
            "holder": a["holder"],
            "amount": a["value"],
            "payment_ref": a["paymentRef"],
            "block_number": ev.block_number,
            "tx_hash": ev.tx_hash,
        },
    )


# -- FinancingDesk --------------------------------------------------------------------------


@handles("FinancingDesk:FinancingApplied")
async def on_financing_applied(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    a = ev.args
    claim = await uow.edit("claims", (a["claimId"],))
    claim["locked_amount"] += a["amount"]
    _restatus(claim)
    payable = await uow.need("payables", (claim["payable_id"],))
    await uow.create(
        "financings",
        {
            "id": a["financingId"],
            "claim_id": a["claimId"],
            "applicant": a["applicant"],
            "financier": a["financier"],
            "obligor": payable["obligor"],
            "amount": a["amount"],
            "expires_at": a["expiresAt"],
            "status": "applied",
            "advance": 0,
            "discount": 0,
            "fees": 0,
            "annual_rate_bps": 0,
            "recourse": False,
            "registration_no": None,
            "disbursement_ref": None,
            "financed_claim_id": None,
            "reason_hash": None,
            "applied_block": ev.block_number,
        },
    )


@handles("FinancingDesk:FinancingApproved")
async def on_financing_approved(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    a = ev.args
    financing = await uow.edit("financings", (a["financingId"],))
    financing.update(
        status="approved",
        advance=a["advance"],
        discount=a["discount"],
        fees=a["fees"],
        annual_rate_bps=a["annualRateBps"],
        recourse=a["recourse"],
        registration_no=_hash_or_none(a["registrationNo"]),
        disbursement_ref=_hash_or_none(a["disbursementRef"]),
        financed_claim_id=a["financedClaimId"],
    )
    source = await uow.edit("claims", (financing["claim_id"],))
    source["locked_amount"] -= financing["amount"]
    _restatus(source)
    financed = await uow.edit("claims", (a["financedClaimId"],))
    financed["financed"] = True
    _restatus(financed)
    exposure = await _exposure(uow, a["financier"], financing["obligor"])
    exposure["outstanding"] += financing["amount"]


async def _unlock(uow: UnitOfWork, financing_id: int, status: str) -> Row:
    financing = await uow.edit("financings", (financing_id,))
    financing["status"] = status
    claim = await uow.edit("claims", (financing["claim_id"],))
    claim["locked_amount"] -= financing["amount"]
    _restatus(claim)
    return financing


@handles("FinancingDesk:FinancingRejected")
async def on_financing_rejected(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    financing = await _unlock(uow, ev.args["financingId"], "rejected")
    financing["reason_hash"] = ev.args["reasonHash"]


@handles("FinancingDesk:FinancingWithdrawn")
async def on_financing_withdrawn(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    await _unlock(uow, ev.args["financingId"], "withdrawn")


@handles("FinancingDesk:FinancingExpired")
async def on_financing_expired(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    await _unlock(uow, ev.args["financingId"], "expired")


@handles("FinancingDesk:ExposureLimitSet")
async def on_exposure_limit_set(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    exposure = await _exposure(uow, ev.args["financier"], ev.args["obligor"])
    exposure["exposure_limit"] = ev.args["exposureLimit"]


@handles("FinancingDesk:ExposureReleased")
async def on_exposure_released(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    exposure = await _exposure(uow, ev.args["financier"], ev.args["obligor"])
    exposure["outstanding"] -= ev.args["value"]


# -- prefetch --------------------------------------------------------------------------------

_CLAIM_ARGS = ("claimId", "parentId", "financedClaimId", "rootClaimId")


def prefetch_keys(events: Iterable[DecodedEvent]) -> dict[str, set[Key]]:
    """The rows the handlers of ``events`` read, by table (loaded in bulk before applying)."""
    wanted: dict[str, set[Key]] = defaultdict(set)
    for ev in events:
        if ev.key not in HANDLERS:
            continue
        a: Any = ev.args
        for name in _CLAIM_ARGS:
            if a.get(name):
                wanted["claims"].add((a[name],))
        if "payableId" in a:
            wanted["payables"].add((a["payableId"],))
        if "financingId" in a:
            wanted["financings"].add((a["financingId"],))
        if "invoiceId" in a and ev.contract == "InvoiceRegistry":
            wanted["invoices"].add((a["invoiceId"],))
        if "account" in a:
            wanted["members"].add((a["account"],))
            for role_id in _ROLE_BITS:
                wanted["role_grants"].add((role_id, a["account"]))
        if "obligor" in a:
            wanted["obligor_accounts"].add((a["obligor"],))
            if "financier" in a:
                wanted["exposures"].add((a["financier"], a["obligor"]))
    return wanted
