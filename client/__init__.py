"""Tierflow's Python client: the typed HTTP client of the API, and signing for members that
hold their own keys.

Partners install it alone: it imports none of the platform's other packages.

::

    from client import TierflowClient, Pkcs11Signer

    signer = Pkcs11Signer("bank-token", pin, "bank-key")
    async with TierflowClient(url, api_key, signer=signer) as tf:
        approved = await tf.financing.approve(request_id, annual_rate_bps=450)

Errors: every exception is a :class:`TierflowError`; the hierarchy is drawn in
:mod:`client.errors`.
"""

from client._base import ConfirmHook, RetryPolicy
from client.client import TierflowClient
from client.errors import (
    ApprovalPending,
    Conflict,
    Forbidden,
    IntentRejected,
    Invalid,
    NotFound,
    PendingError,
    ProblemError,
    RateLimited,
    ResponseError,
    ServerError,
    SignatureRequired,
    SignerError,
    SigningDeclined,
    TierflowError,
    TransportError,
    Unauthorized,
    Unavailable,
)
from client.intents import (
    ContractAbis,
    DecodedAction,
    Intent,
    IntentAction,
    TrustedDeployment,
    verify_intent,
)
from client.models import Page
from client.pending import PendingApproval
from client.signing import (
    KeyfileSigner,
    Pkcs11Signer,
    SignedTransaction,
    Signer,
    generate_pkcs11_key,
    import_pkcs11_key,
    pkcs11_key_address,
    recover_address,
    sign_transaction,
    sign_typed_data,
    typed_data_digest,
)
from client.webhooks import WebhookVerificationError, verify_webhook

__all__ = [
    "ApprovalPending",
    "ConfirmHook",
    "Conflict",
    "ContractAbis",
    "DecodedAction",
    "Forbidden",
    "Intent",
    "IntentAction",
    "IntentRejected",
    "Invalid",
    "KeyfileSigner",
    "NotFound",
    "Page",
    "PendingApproval",
    "PendingError",
    "Pkcs11Signer",
    "ProblemError",
    "RateLimited",
    "ResponseError",
    "RetryPolicy",
    "ServerError",
    "SignatureRequired",
    "SignedTransaction",
    "Signer",
    "SignerError",
    "SigningDeclined",
    "TierflowClient",
    "TierflowError",
    "TransportError",
    "TrustedDeployment",
    "Unauthorized",
    "Unavailable",
    "WebhookVerificationError",
    "generate_pkcs11_key",
    "import_pkcs11_key",
    "pkcs11_key_address",
    "recover_address",
    "sign_transaction",
    "sign_typed_data",
    "typed_data_digest",
    "verify_intent",
    "verify_webhook",
]
