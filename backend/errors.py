"""The platform's domain errors: one root, :class:`DomainError`, none of them HTTP.

::

    DomainError               kind, stable ``code``, human ``detail``, ``extra`` context
    ├── Invalid               the request cannot be done as asked (bad input)
    ├── Unauthorized          no or a bad credential
    ├── Forbidden             the caller may not do this (its role, or not its object)
    ├── NotFound              no such object (also: one the caller may not see)
    ├── Conflict              the object's state does not allow it
    ├── RateLimited           too many requests (``retry_after_s``)
    ├── BadRequest            the request is malformed as a request (a missing header)
    ├── TooLarge              the request is larger than accepted
    └── Unavailable           a dependency (node, mirror) cannot answer now: retry later
        └── PlatformPaused    the relayer holds a signed request back while paused

Services raise these; only :mod:`backend.api.problems` knows HTTP: it maps each kind to a
status and answers RFC 9457 problem details. Every contract custom error maps to one code
and kind (:data:`CONTRACT_ERRORS`, :func:`from_revert`), so the rules stay the chain's: the
API does not re-check them, it translates the chain's refusal. An error never carries a stack
trace, SQL, or the node's URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger.errors import ContractRevert

PROBLEM_JSON = "application/problem+json"


class DomainError(Exception):
    """A refusal with a stable ``code``; its class is its kind."""

    code = "bad_request"

    def __init__(
        self, detail: str, *, code: str | None = None, extra: dict[str, Any] | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.extra = extra or {}


class Invalid(DomainError):
    code = "invalid_request"


class Unauthorized(DomainError):
    code = "unauthorized"


class Forbidden(DomainError):
    code = "forbidden"


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"


class BadRequest(DomainError):
    code = "bad_request"


class TooLarge(DomainError):
    code = "request_too_large"


class Unavailable(DomainError):
    """A dependency cannot answer now; nothing is decided (never stored as an answer). Answered
    with ``Retry-After: retry_after_s``."""

    code = "unavailable"
    retry_after_s = 2


class PlatformPaused(Unavailable):
    """A ``self`` member's signed request while the operator has paused the platform: the
    relayer does not send it (the forwarder would spend the member's nonce on a call the pause
    refuses). Nothing is decided: the intent stays open, its nonce unspent, and the same
    signature relays it after the unpause (answered 503 ``platform_paused``)."""

    code = "platform_paused"
    retry_after_s = 5  # a client retries a few times, then its signer's next pass does


class RateLimited(DomainError):
    code = "rate_limited"

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(
            f"too many requests for this API key; retry in {retry_after_s} s",
            extra={"retry_after": retry_after_s},
        )
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class _Mapped:
    code: str
    kind: type[DomainError]
    detail: str


def _m(code: str, kind: type[DomainError], detail: str) -> _Mapped:
    return _Mapped(code, kind, detail)


#: Contract custom error → the platform's code, kind and a message for people.
CONTRACT_ERRORS: dict[str, _Mapped] = {
    # members
    "MemberAlreadyRegistered": _m("member_exists", Conflict, "this account is already a member"),
    "MemberNotRegistered": _m("member_unknown", Invalid, "the account is not a member"),
    "MemberNotActive": _m("member_not_active", Conflict, "the member is suspended"),
    "MemberKycExpired": _m("kyc_expired", Conflict, "the member's KYC has expired"),
    "MemberRoleMissing": _m("role_missing", Forbidden, "the member lacks the role this needs"),
    "MemberStatusInvalid": _m("member_status_invalid", Conflict, "not possible in this status"),
    "MemberKycExpiryInvalid": _m("kyc_expiry_invalid", Invalid, "the KYC expiry must be ahead"),
    "MemberAddressZero": _m("address_invalid", Invalid, "the zero address is not an account"),
    "MemberRolesInvalid": _m("roles_invalid", Invalid, "unknown or empty roles"),
    "MemberAuditorExclusive": _m(
        "auditor_exclusive",
        Invalid,
        "an auditor holds no business role, nor a business member the auditor role",
    ),
    "EnforcedPause": _m("platform_paused", Conflict, "the platform is paused"),
    "ExpectedPause": _m("platform_not_paused", Conflict, "the platform is not paused"),
    "AccessControlUnauthorizedAccount": _m("not_allowed", Forbidden, "not allowed for this member"),
    # invoices
    "InvoiceAlreadyRegistered": _m("invoice_duplicate", Conflict, "this invoice is registered"),
    "InvoiceDocumentAlreadyRegistered": _m(
        "invoice_document_duplicate", Conflict, "this invoice document is registered already"
    ),
    "InvoiceNotFound": _m("invoice_not_found", NotFound, "no such invoice"),
    "InvoiceStatusInvalid": _m("invoice_status_invalid", Conflict, "not possible in this status"),
    "InvoiceNotBuyer": _m("not_buyer", Forbidden, "only the invoice's buyer may do this"),
    "InvoiceNotSeller": _m("not_seller", Forbidden, "only the invoice's seller may do this"),
    "InvoiceAmountInvalid": _m("amount_invalid", Invalid, "the amount must be positive"),
    "InvoiceIssueDateInvalid": _m("issue_date_invalid", Invalid, "the issue date is not valid"),
    "InvoiceHashInvalid": _m("hash_invalid", Invalid, "the hash must not be zero"),
    "InvoiceBuyerInvalid": _m("buyer_invalid", Invalid, "the buyer must be another member"),
    "InvoicePartiesMismatch": _m(
        "invoice_parties_mismatch", Conflict, "the invoice is not between these parties"
    ),
    "InvoiceAmountInsufficient": _m(
        "invoice_amount_insufficient", Conflict, "the invoice does not cover the amount"
    ),
    # payables
    "PayableNotFound": _m("payable_not_found", NotFound, "no such payable"),
    "PayableStatusInvalid": _m("payable_status_invalid", Conflict, "not possible in this status"),
    "PayableFaceValueInvalid": _m("amount_invalid", Invalid, "the face value must be positive"),
    "PayableDueDateInvalid": _m("due_date_invalid", Invalid, "the due date is outside the term"),
    "PayableInvoiceCountInvalid": _m("invoice_count_invalid", Invalid, "too few or many invoices"),
    "PayableInvoicesInsufficient": _m(
        "invoices_insufficient", Conflict, "the invoices total less than the face value"
    ),
    "PayableLimitExceeded": _m("limit_exceeded", Conflict, "the program limit would be exceeded"),
    "PayableObligorOverLimit": _m(
        "over_limit",
        Conflict,
        "the obligor is over its program limit: no new payable until it is back under",
    ),
    "PayableNotCancellable": _m(
        "not_cancellable", Conflict, "the payable can no longer be declined"
    ),
    "PayableNotOverdueYet": _m(
        "not_overdue_yet",
        Conflict,
        "the grace period has not passed (time the platform was paused or a piece of the "
        "payable frozen does not count): chain_error_args.overdueFrom is the deadline as of now",
    ),
    "PayableClearingAgentInvalid": _m(
        "clearing_agent_invalid", Invalid, "the clearing agent is not an active clearing agent"
    ),
    "PayableSupplierInvalid": _m("supplier_invalid", Invalid, "the supplier is not valid"),
    "PayableNotSettler": _m("not_settler", Forbidden, "only the obligor or its clearing agent"),
    "PayableNotDue": _m("not_due", Conflict, "the payable is not due yet"),
    "ClaimSettlerIsHolder": _m(
        "settler_is_holder",
        Forbidden,
        "a clearing agent cannot record the payment of a piece it holds: the obligor records it",
    ),
    # claims
    "ClaimNotFound": _m("claim_not_found", NotFound, "no such claim piece"),
    "ClaimNotHolder": _m("not_holder", Forbidden, "only the holder of the piece may do this"),
    "ClaimIsFrozen": _m("claim_frozen", Conflict, "the piece is frozen"),
    "ClaimNotFrozen": _m("claim_not_frozen", Conflict, "the piece is not frozen"),
    "ClaimNotLive": _m("claim_not_live", Conflict, "the piece is settled or cancelled"),
    "ClaimPastDueDate": _m("past_due_date", Conflict, "the payable is due: pieces no longer move"),
    "ClaimAmountInvalid": _m("amount_invalid", Invalid, "the amount must be positive"),
    "ClaimAmountExceedsAvailable": _m(
        "amount_exceeds_available", Conflict, "the amount exceeds the piece's unlocked value"
    ),
    "ClaimValueLocked": _m("value_locked", Conflict, "value of the piece is locked by financing"),
    "ClaimRecipientInvalid": _m(
        "recipient_invalid", Invalid, "the recipient must be an active supplier or financier"
    ),
    "ClaimTradeInvoiceRequired": _m(
        "trade_invoice_required", Invalid, "a trade invoice must back this transfer"
    ),
    "ClaimDepthExceeded": _m("depth_exceeded", Conflict, "the piece cannot be split further"),
    "ClaimOperatorInvalid": _m("operator_invalid", Invalid, "no such operator can be approved"),
    "ClaimAllowanceExceeded": _m(
        "allowance_exceeded", Forbidden, "the value exceeds what the holder allowed"
    ),
    "ClaimReceiverRejected": _m(
        "recipient_refused", Conflict, "the recipient contract refused the piece"
    ),
    "ClaimMergeUnsupported": _m("not_allowed", Forbidden, "value cannot be merged into a piece"),
    "ClaimOwnerZero": _m("address_invalid", Invalid, "the zero address holds nothing"),
    "SettlementBatchInvalid": _m("batch_invalid", Invalid, "the batch is empty or too long"),
    "SettlementReferenceInvalid": _m(
        "payment_ref_invalid", Invalid, "a payment reference is needed"
    ),
    "SettlementReferenceUsed": _m(
        "payment_reference_used",
        Conflict,
        "this payment reference already paid another holder or payable: one bank payment pays"
        " one holder for one payable",
    ),
    # financing
    "FinancingNotFound": _m("financing_not_found", NotFound, "no such financing request"),
    "FinancingNotPending": _m("financing_not_pending", Conflict, "the request is decided already"),
    "FinancingNotFinancier": _m("not_financier", Forbidden, "only the named financier may decide"),
    "FinancingNotApplicant": _m("not_applicant", Forbidden, "only the applicant may withdraw"),
    "FinancingAmountInvalid": _m("amount_invalid", Invalid, "the amount must be positive"),
    "FinancingExpiryInvalid": _m("expiry_invalid", Invalid, "the expiry must be before due date"),
    "FinancingHasExpired": _m("financing_expired", Conflict, "the request has expired"),
    "FinancingNotExpired": _m("financing_not_expired", Conflict, "the request has not expired"),
    "FinancingFinancierInvalid": _m(
        "financier_invalid", Invalid, "the financier must be another active financier"
    ),
    "FinancingTermsInvalid": _m(
        "terms_invalid", Invalid, "advance + discount + fees must equal the amount, advance > 0"
    ),
    "FinancingTermDaysInvalid": _m("term_days_invalid", Invalid, "the term is not the days left"),
    "FinancingDiscountInvalid": _m(
        "discount_invalid", Invalid, "the discount does not follow face × rate × days / 360"
    ),
    "FinancingRegistrationRequired": _m(
        "registration_required", Invalid, "the registry number is required before funding"
    ),
    "FinancingExposureExceeded": _m(
        "limit_exceeded", Conflict, "the financier's exposure limit would be exceeded"
    ),
    "FinancingMinAdvanceInvalid": _m(
        "min_advance_invalid", Invalid, "min_advance is more than the amount applied for"
    ),
    "FinancingAdvanceBelowMinimum": _m(
        "advance_below_minimum",
        Conflict,
        "the advance is less than the applicant's committed min_advance",
    ),
    "FinancingRecourseMismatch": _m(
        "recourse_mismatch", Conflict, "the recourse is not the one the applicant committed to"
    ),
    "FinancingRegistrationUsed": _m(
        "registration_used", Conflict, "the registration number already backs a financing"
    ),
    "FinancingDisbursementUsed": _m(
        "disbursement_used", Conflict, "the disbursement reference already backs a financing"
    ),
}


def from_revert(revert: ContractRevert) -> DomainError:
    """The domain error for a contract's refusal (unknown errors: Conflict ``chain_refused``)."""
    mapped = CONTRACT_ERRORS.get(revert.name)
    if mapped is None:
        # Not one of the contracts' custom errors: a panic, an out-of-gas, a node's message.
        # Its text is the node's, not ours: only a plain identifier goes out, no arguments.
        name = revert.name if revert.name and revert.name.isidentifier() else None
        return Conflict(
            "the ledger refused the operation",
            code="chain_refused",
            extra={"chain_error": name},
        )
    context = {k: _jsonable(v) for k, v in revert.args.items()}
    return mapped.kind(
        mapped.detail,
        code=mapped.code,
        extra={"chain_error": revert.name, "chain_error_args": context},
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
        return str(value)
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
