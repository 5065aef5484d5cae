"""Every write is a named command with JSON arguments, dispatched from one registry.

``Command("claims.transfer", {"claim_id": 7, "to": "0x…", "amount": 100, "invoice_id": None})``
names the operation and carries everything the write needs besides its caller. The
idempotency record keeps the command (with the caller), so a write can be run again from
storage alone: after a crashed worker (the journal then finds the transactions it had sent),
and, later, once a member's signature or a checker's approval arrives; it answers exactly
what the write would have answered (:func:`execute` serialises through the command's answer
model). Services stay free of HTTP: :attr:`CommandSpec.creates` says a write creates an
object, and the API makes that a 201.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from backend.ports import Ports, WriteContext
from backend.schemas.claims import ClaimWrite, TransferWrite
from backend.schemas.financing import CreditLineWrite, FinancingWrite, PolicyPublic
from backend.schemas.invoices import InvoiceWrite
from backend.schemas.members import (
    ApiKeyCreated,
    ApiKeyPublic,
    DualControlPublic,
    MemberCreated,
    MemberWrite,
    OrgUserCreated,
    ProgramLimitPublic,
)
from backend.schemas.payables import PayableOverdueWrite, PayableWrite, SettlementsWrite
from backend.services import (
    claims,
    credit_lines,
    financing,
    invoices,
    members,
    org_users,
    payables,
    policy,
)


@dataclass(frozen=True)
class Command:
    """A write: its operation's name and JSON arguments."""

    operation: str
    args: dict[str, Any]

    def __post_init__(self) -> None:
        if self.operation not in COMMANDS:
            raise KeyError(f"no command {self.operation!r}")


@dataclass(frozen=True)
class CommandSpec:
    """What runs a command, and the model its answer is given in."""

    run: Callable[..., Awaitable[dict[str, Any]]]
    answer: type[BaseModel]
    creates: bool = False
    #: The command writes nothing, in the database or on chain, before its first signed
    #: transaction is recorded (through the write's journal) or its answer is stored: it
    #: reads, then submits calls through the ledger port. Its Idempotency-Key is then claimed
    #: by the write's first transaction rather than one of its own
    #: (:meth:`backend.idempotency.Idempotency.run`); a command that writes rows of its own
    #: first (a member's keystore entry, an invoice's document) claims its key up front.
    claims_late: bool = False


COMMANDS: dict[str, CommandSpec] = {
    # members (the operator), API keys (the member itself)
    "members.create": CommandSpec(members.create_member, MemberCreated, creates=True),
    "members.suspend": CommandSpec(members.suspend, MemberWrite),
    "members.reinstate": CommandSpec(members.reinstate, MemberWrite),
    "members.renew_kyc": CommandSpec(members.renew_kyc, MemberWrite),
    "members.set_program_limit": CommandSpec(members.set_program_limit, ProgramLimitPublic),
    "api_keys.create": CommandSpec(members.rotate_key, ApiKeyCreated, creates=True),
    "api_keys.revoke": CommandSpec(members.revoke_key, ApiKeyPublic),
    # organisation users and settings (the member's admin users)
    "users.create": CommandSpec(org_users.create_user, OrgUserCreated, creates=True),
    "members.set_dual_control": CommandSpec(org_users.set_dual_control, DualControlPublic),
    # invoices
    "invoices.register": CommandSpec(invoices.register, InvoiceWrite, creates=True),
    "invoices.confirm": CommandSpec(invoices.confirm, InvoiceWrite, claims_late=True),
    "invoices.void": CommandSpec(invoices.void, InvoiceWrite, claims_late=True),
    # payables
    "payables.issue": CommandSpec(payables.issue, PayableWrite, creates=True, claims_late=True),
    "payables.cancel": CommandSpec(payables.cancel, PayableWrite, claims_late=True),
    "payables.mark_overdue": CommandSpec(
        payables.mark_overdue, PayableOverdueWrite, claims_late=True
    ),
    "payables.settle": CommandSpec(payables.settle, SettlementsWrite, claims_late=True),
    # claim pieces
    "claims.transfer": CommandSpec(claims.transfer, TransferWrite, creates=True, claims_late=True),
    "claims.freeze": CommandSpec(claims.freeze, ClaimWrite, claims_late=True),
    "claims.unfreeze": CommandSpec(claims.unfreeze, ClaimWrite, claims_late=True),
    # financing
    "financing.apply": CommandSpec(financing.apply, FinancingWrite, creates=True, claims_late=True),
    "financing.approve": CommandSpec(financing.approve, FinancingWrite, claims_late=True),
    "financing.reject": CommandSpec(financing.reject, FinancingWrite, claims_late=True),
    "financing.withdraw": CommandSpec(financing.withdraw, FinancingWrite, claims_late=True),
    "financing.expire": CommandSpec(financing.expire, FinancingWrite, claims_late=True),
    # a financier's settings
    "credit_lines.set": CommandSpec(credit_lines.set_credit_line, CreditLineWrite),
    "financing_policy.put": CommandSpec(policy.put_policy, PolicyPublic),
}


#: Commands after which the worker's cached callers (:class:`backend.auth.CallerCache`) are
#: forgotten: they change what a key stands for (revoked, its member's status or roles).
CHANGES_CALLERS = frozenset(
    {
        "members.create",
        "members.suspend",
        "members.reinstate",
        "members.renew_kyc",
        "api_keys.create",
        "api_keys.revoke",
        "users.create",
    }
)


def spec(operation: str) -> CommandSpec:
    return COMMANDS[operation]


async def execute(ports: Ports, write: WriteContext, command: Command) -> Any:
    """Run ``command`` as ``write.caller``; its answer as JSON (through the answer model, so
    a stored answer replays as the very same bytes)."""
    found = COMMANDS[command.operation]
    try:
        answer = await found.run(ports, write, **command.args)
    finally:
        # Even a failed one may have changed something (a key revoked, then the answer lost).
        if command.operation in CHANGES_CALLERS and ports.callers is not None:
            ports.callers.clear()
    return found.answer.model_validate(answer).model_dump(mode="json")
