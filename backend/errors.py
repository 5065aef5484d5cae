"""The API's errors: one root, :class:`ApiError`, answered as RFC 9457 problem details.

::

    ApiError                  status, stable ``code``, human ``detail``
    ├── NotFound              404 (also: exists but not visible to the caller)
    ├── Forbidden             403
    ├── Conflict              409 (the object's state does not allow it)
    ├── Invalid               422
    ├── Unauthorized          401
    └── TooManyRequests       429 (``retry_after`` seconds)

Every contract custom error maps to one code and status (:data:`CONTRACT_ERRORS`), so the
rules stay the chain's: the API does not re-check them, it translates the chain's refusal.
A problem body never carries a stack trace, SQL, or the node's URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger.errors import ContractRevert

PROBLEM_JSON = "application/problem+json"


class ApiError(Exception):
    """An error the API answers with a problem document."""

    status = 400
    code = "bad_request"
    title = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        status: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.extra = extra or {}

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"https://tierflow.dev/problems/{self.code.replace('_', '-')}",
            "title": _TITLES.get(self.status, self.title),
            "status": self.status,
            "code": self.code,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class Forbidden(ApiError):
    status = 403
    code = "forbidden"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class Conflict(ApiError):
    status = 409
    code = "conflict"


class Invalid(ApiError):
    status = 422
    code = "invalid_request"


class TooManyRequests(ApiError):
    status = 429
    code = "rate_limited"

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(
            f"too many requests for this API key; retry in {retry_after_s} s",
            extra={"retry_after": retry_after_s},
        )
        self.retry_after_s = retry_after_s


_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Unprocessable request",
    429: "Too many requests",
    500: "Internal error",
    503: "Service unavailable",
}


@dataclass(frozen=True)
class _Mapped:
    code: str
    status: int
    detail: str


def _m(code: str, status: int, detail: str) -> _Mapped:
    return _Mapped(code, status, detail)


#: Contract custom error → the API's code, status and a message for people.
CONTRACT_ERRORS: dict[str, _Mapped] = {
    # members
    "MemberAlreadyRegistered": _m("member_exists", 409, "this account is already a member"),
    "MemberNotRegistered": _m("member_unknown", 422, "the account is not a member"),
    "MemberNotActive": _m("member_not_active", 409, "the member is suspended"),
    "MemberKycExpired": _m("kyc_expired", 409, "the member's KYC has expired"),
    "MemberRoleMissing": _m("role_missing", 403, "the member lacks the role this needs"),
    "MemberStatusInvalid": _m("member_status_invalid", 409, "not possible in this status"),
    "MemberKycExpiryInvalid": _m("kyc_expiry_invalid", 422, "the KYC expiry must be ahead"),
    "MemberAddressZero": _m("address_invalid", 422, "the zero address is not an account"),
    "MemberRolesInvalid": _m("roles_invalid", 422, "unknown or empty roles"),
    "EnforcedPause": _m("platform_paused", 409, "the platform is paused"),
    "ExpectedPause": _m("platform_not_paused", 409, "the platform is not paused"),
    "AccessControlUnauthorizedAccount": _m("not_allowed", 403, "not allowed for this member"),
    # invoices
    "InvoiceAlreadyRegistered": _m("invoice_duplicate", 409, "this invoice is registered"),
    "InvoiceDocumentAlreadyRegistered": _m(
        "invoice_document_duplicate", 409, "this invoice document is registered already"
    ),
    "InvoiceNotFound": _m("invoice_not_found", 404, "no such invoice"),
    "InvoiceStatusInvalid": _m("invoice_status_invalid", 409, "not possible in this status"),
    "InvoiceNotBuyer": _m("not_buyer", 403, "only the invoice's buyer may do this"),
    "InvoiceNotSeller": _m("not_seller", 403, "only the invoice's seller may do this"),
    "InvoiceAmountInvalid": _m("amount_invalid", 422, "the amount must be positive"),
    "InvoiceIssueDateInvalid": _m("issue_date_invalid", 422, "the issue date is not valid"),
    "InvoiceHashInvalid": _m("hash_invalid", 422, "the hash must not be zero"),
    "InvoiceBuyerInvalid": _m("buyer_invalid", 422, "the buyer must be another member"),
    "InvoicePartiesMismatch": _m(
        "invoice_parties_mismatch", 409, "the invoice is not between these parties"
    ),
    "InvoiceAmountInsufficient": _m(
        "invoice_amount_insufficient", 409, "the invoice does not cover the amount"
    ),
    # payables
    "PayableNotFound": _m("payable_not_found", 404, "no such payable"),
    "PayableStatusInvalid": _m("payable_status_invalid", 409, "not possible in this status"),
    "PayableFaceValueInvalid": _m("amount_invalid", 422, "the face value must be positive"),
    "PayableDueDateInvalid": _m("due_date_invalid", 422, "the due date is outside the term"),
    "PayableInvoiceCountInvalid": _m("invoice_count_invalid", 422, "too few or many invoices"),
    "PayableInvoicesInsufficient": _m(
        "invoices_insufficient", 409, "the invoices total less than the face value"
    ),
    "PayableLimitExceeded": _m("limit_exceeded", 409, "the program limit would be exceeded"),
    "PayableNotCancellable": _m("not_cancellable", 409, "the payable can no longer be declined"),
    "PayableNotOverdueYet": _m("not_overdue_yet", 409, "the grace period has not passed"),
    "PayableClearingAgentInvalid": _m(
        "clearing_agent_invalid", 422, "the clearing agent is not an active clearing agent"
    ),
    "PayableSupplierInvalid": _m("supplier_invalid", 422, "the supplier is not valid"),
    "PayableNotSettler": _m("not_settler", 403, "only the obligor or its clearing agent"),
    "PayableNotDue": _m("not_due", 409, "the payable is not due yet"),
    # claims
    "ClaimNotFound": _m("claim_not_found", 404, "no such claim piece"),
    "ClaimNotHolder": _m("not_holder", 403, "only the holder of the piece may do this"),
    "ClaimIsFrozen": _m("claim_frozen", 409, "the piece is frozen"),
    "ClaimNotFrozen": _m("claim_not_frozen", 409, "the piece is not frozen"),
    "ClaimNotLive": _m("claim_not_live", 409, "the piece is settled or cancelled"),
    "ClaimPastDueDate": _m("past_due_date", 409, "the payable is due: pieces no longer move"),
    "ClaimAmountInvalid": _m("amount_invalid", 422, "the amount must be positive"),
    "ClaimAmountExceedsAvailable": _m(
        "amount_exceeds_available", 409, "the amount exceeds the piece's unlocked value"
    ),
    "ClaimValueLocked": _m("value_locked", 409, "value of the piece is locked by financing"),
    "ClaimRecipientInvalid": _m(
        "recipient_invalid", 422, "the recipient must be an active supplier or financier"
    ),
    "ClaimTradeInvoiceRequired": _m(
        "trade_invoice_required", 422, "a trade invoice must back this transfer"
    ),
    "ClaimDepthExceeded": _m("depth_exceeded", 409, "the piece cannot be split further"),
    "ClaimApprovalsDisabled": _m("not_allowed", 403, "approvals are disabled"),
    "ClaimMergeUnsupported": _m("not_allowed", 403, "value cannot be merged into a piece"),
    "ClaimOwnerZero": _m("address_invalid", 422, "the zero address holds nothing"),
    "SettlementBatchInvalid": _m("batch_invalid", 422, "the batch is empty or too long"),
    "SettlementReferenceInvalid": _m("payment_ref_invalid", 422, "a payment reference is needed"),
    # financing
    "FinancingNotFound": _m("financing_not_found", 404, "no such financing request"),
    "FinancingNotPending": _m("financing_not_pending", 409, "the request is decided already"),
    "FinancingNotFinancier": _m("not_financier", 403, "only the named financier may decide"),
    "FinancingNotApplicant": _m("not_applicant", 403, "only the applicant may withdraw"),
    "FinancingAmountInvalid": _m("amount_invalid", 422, "the amount must be positive"),
    "FinancingExpiryInvalid": _m("expiry_invalid", 422, "the expiry must be before due date"),
    "FinancingHasExpired": _m("financing_expired", 409, "the request has expired"),
    "FinancingNotExpired": _m("financing_not_expired", 409, "the request has not expired"),
    "FinancingFinancierInvalid": _m(
        "financier_invalid", 422, "the financier must be another active financier"
    ),
    "FinancingTermsInvalid": _m(
        "terms_invalid", 422, "advance + discount + fees must equal the amount, advance > 0"
    ),
    "FinancingTermDaysInvalid": _m("term_days_invalid", 422, "the term is not the days left"),
    "FinancingDiscountInvalid": _m(
        "discount_invalid", 422, "the discount does not follow face × rate × days / 360"
    ),
    "FinancingRegistrationRequired": _m(
        "registration_required", 422, "the registry number is required before funding"
    ),
    "FinancingExposureExceeded": _m(
        "limit_exceeded", 409, "the financier's exposure limit would be exceeded"
    ),
}


def from_revert(revert: ContractRevert) -> ApiError:
    """The API error for a contract's refusal (unknown errors: 409 ``chain_refused``)."""
    mapped = CONTRACT_ERRORS.get(revert.name)
    context = {k: _jsonable(v) for k, v in revert.args.items()}
    if mapped is None:
        return Conflict(
            f"the ledger refused the operation ({revert.name or 'reverted'})",
            code="chain_refused",
            extra={"chain_error": revert.name, "chain_error_args": context},
        )
    return ApiError(
        mapped.detail,
        code=mapped.code,
        status=mapped.status,
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
