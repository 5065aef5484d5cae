"""The API's own tables (the mirror's are :mod:`indexer.models`, written by the indexer only),
and their Alembic history (``backend/migrations``, version table ``alembic_version_api``).

- ``member_profiles``: what the platform knows of a member off chain: its name, its custody
  (``self``: it holds its key; ``hosted``: the keystore holds it) and whether its writes need
  a checker's approval (dual control).
- ``org_users``: the people of a member organisation (SPEC §1), each with a role (``admin``,
  ``maker``, ``checker``) and API keys of its own (``api_keys.user_id``).
- ``approvals``: a maker's write waiting for a checker under dual control: the request as it
  came (to run it, under the maker's Idempotency-Key, once approved) and the decision.
- ``api_keys``: each member's keys, stored as SHA-256 of the secret (keys are 256-bit random,
  so a plain hash is enough and lookups stay constant-time by id).
- ``keystore``: members' chain keys as eth-account encrypted keyfiles (scrypt), password from
  settings; never returned, never logged.
- ``invoice_details``: the invoice fields that stay off chain (tax id, code, number).
- ``idempotency_records``: one per (member, Idempotency-Key): the request's hash, the write
  as a command (operation, arguments, the caller's key), the transactions signed for it
  (hash and raw bytes, recorded before they are broadcast) and, once done, the response.
- ``audit_log``: every mutating request, accepted or refused; each record carries the hash of
  the one before it, so a changed or removed record breaks the chain.
- ``credit_lines``: a financier's credit line per obligor (its exposure limit is on chain; the
  programme's registration number in the national registry is kept here).
- ``financing_policies``: a financier's auto-approval policy.
- ``nonces``: the next nonce per account, shared by every API worker (``SqlNonceStore``).
- ``console_sessions``: the console's signed-in browsers (:mod:`backend.console_sessions`):
  the SHA-256 of the cookie's token, the member and the API key it signed in with (revoking
  the key ends the session), the session's CSRF token and its expiry.
- ``webhook_endpoints``, ``webhook_deliveries``, ``webhook_attempts``, ``webhook_cursor``:
  members' webhooks, what is queued for each and every attempt (:mod:`backend.webhooks`).
- ``audit_pending``: a mutating request that broadcast a transaction and has no audit record
  yet (written before the broadcast, removed when its record is appended); a sweeper turns
  the rows of requests that died into ``request_interrupted`` records citing their
  transactions (AP-3).
- ``service_leases``: work one API worker does at a time for all (the audit log's anchoring):
  who holds it and until when.
- ``rate_buckets``: the rate limits' token buckets (per member, per client address), shared
  by every API worker (:mod:`backend.ratelimit`).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from db.migrate import History, upgrade
from db.types import ADDRESS, HASH, NAMING, Amount
from indexer.models import migrate as migrate_mirror

#: The API's own tables' Alembic history (``backend/migrations``).
API_HISTORY = History("api", Path(__file__).resolve().parent / "migrations", "alembic_version_api")


async def migrate(engine: AsyncEngine) -> None:
    """Bring the mirror's tables (the API reads them) and the API's own to their heads."""
    await migrate_mirror(engine)
    await upgrade(engine, API_HISTORY)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class MemberProfile(Base):
    __tablename__ = "member_profiles"
    address: Mapped[str] = mapped_column(ADDRESS, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[int] = mapped_column(BigInteger)
    custody: Mapped[str] = mapped_column(String(8), default="hosted", server_default="hosted")
    dual_control: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class OrgUser(Base):
    __tablename__ = "org_users"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    member: Mapped[str] = mapped_column(ADDRESS, index=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))  # admin, maker, checker
    created_at: Mapped[int] = mapped_column(BigInteger)


class Approval(Base):
    __tablename__ = "approvals"
    __table_args__ = (UniqueConstraint("member", "idempotency_key"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    member: Mapped[str] = mapped_column(ADDRESS)
    idempotency_key: Mapped[str] = mapped_column(String(200))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)  # the request body as sent (UTF-8 text)
    request_sha256: Mapped[str] = mapped_column(String(64))
    operation: Mapped[str] = mapped_column(String(64))
    arguments: Mapped[str] = mapped_column(Text)
    maker_key_id: Mapped[str] = mapped_column(String(32))
    maker_user_id: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))  # pending, approved, declined
    checker_key_id: Mapped[str | None] = mapped_column(String(32))
    checker_user_id: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[int] = mapped_column(BigInteger)
    decided_at: Mapped[int | None] = mapped_column(BigInteger)


class IntentRow(Base):
    """A write of a ``self`` member waiting for (or done with) the member's signature of an
    EIP-712 forward request (docs/consent.md)."""

    __tablename__ = "intents"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    member: Mapped[str] = mapped_column(ADDRESS, index=True)
    #: The write's Idempotency-Key (its record holds the command and, later, the answer).
    idempotency_key: Mapped[str] = mapped_column(String(200))
    contract: Mapped[str] = mapped_column(String(64))
    function: Mapped[str] = mapped_column(String(64))
    typed_data: Mapped[str] = mapped_column(Text)  # JSON: exactly what is signed
    action: Mapped[str] = mapped_column(Text)  # JSON: the call in plain fields
    digest: Mapped[str] = mapped_column(String(66))
    deadline: Mapped[int] = mapped_column(BigInteger)  # chain time
    status: Mapped[str] = mapped_column(String(16))  # open, signed, done, failed, expired
    signature: Mapped[str | None] = mapped_column(String(140))
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    created_at: Mapped[int] = mapped_column(BigInteger)


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    member: Mapped[str] = mapped_column(ADDRESS, index=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[int] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)
    #: The organisation user the key belongs to (``None``: the operator's, or a key older
    #: than organisation users, which acts as the member's admin).
    user_id: Mapped[str | None] = mapped_column(String(32))


class KeystoreEntry(Base):
    __tablename__ = "keystore"
    address: Mapped[str] = mapped_column(ADDRESS, primary_key=True)
    keyfile: Mapped[str] = mapped_column(Text)  # eth-account keyfile JSON (encrypted)


class InvoiceDetails(Base):
    __tablename__ = "invoice_details"
    id: Mapped[str] = mapped_column(HASH, primary_key=True)
    seller_tax_id: Mapped[str] = mapped_column(String(64))
    invoice_code: Mapped[str] = mapped_column(String(64))
    number: Mapped[str] = mapped_column(String(64))


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_records"
    member: Mapped[str] = mapped_column(ADDRESS, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_sha256: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(300))
    #: The write as a command (backend.services.commands): its operation, its JSON arguments
    #: and the API key of its caller (``member``), so it can be run again from storage alone.
    operation: Mapped[str] = mapped_column(String(64))
    arguments: Mapped[str] = mapped_column(Text)
    caller_key_id: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))  # "pending" or "done"
    #: Until then the worker that took it is taken to be alive; later a retry may resume it.
    locked_until_ms: Mapped[int] = mapped_column(BigInteger)
    #: JSON list of {"hash", "raw", "nonce"}: what was signed, in order, before broadcast.
    transactions: Mapped[str] = mapped_column(Text)
    #: JSON object a write keeps for its own resumption (the account a member creation made).
    memo: Mapped[str] = mapped_column(Text)
    status_code: Mapped[int | None] = mapped_column(Integer)
    response: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)


class AuditRecord(Base):
    __tablename__ = "audit_log"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(32))  # ISO 8601, UTC
    member: Mapped[str | None] = mapped_column(ADDRESS, index=True)
    api_key_id: Mapped[str | None] = mapped_column(String(32))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(300))
    status: Mapped[int] = mapped_column(Integer)
    code: Mapped[str | None] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_sha256: Mapped[str] = mapped_column(String(64))
    tx_hashes: Mapped[str] = mapped_column(Text)  # JSON list
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: X-Request-Id of the request (null in records written before it was kept).
    request_id: Mapped[str | None] = mapped_column(String(32), index=True)


class AuditPending(Base):
    """A request that has broadcast (or is about to broadcast) and has no audit record yet."""

    __tablename__ = "audit_pending"
    request_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    member: Mapped[str | None] = mapped_column(ADDRESS)
    api_key_id: Mapped[str | None] = mapped_column(String(32))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(300))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_sha256: Mapped[str] = mapped_column(String(64))
    tx_hashes: Mapped[str] = mapped_column(Text)  # JSON list
    updated_at: Mapped[int] = mapped_column(BigInteger, index=True)


class AuditHead(Base):
    """The newest audit record's number and hash: appends lock this one row, in order."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class ServiceLease(Base):
    """Work one worker does for all, held by ``owner`` until ``until_ms`` (renewed)."""

    __tablename__ = "service_leases"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    until_ms: Mapped[int] = mapped_column(BigInteger)


class RateBucket(Base):
    """One token bucket of the rate limits: its tokens at ``at_ms``."""

    __tablename__ = "rate_buckets"
    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    at_ms: Mapped[int] = mapped_column(BigInteger)


class CreditLine(Base):
    __tablename__ = "credit_lines"
    financier: Mapped[str] = mapped_column(ADDRESS, primary_key=True)
    obligor: Mapped[str] = mapped_column(ADDRESS, primary_key=True)
    limit: Mapped[int] = mapped_column(Amount)
    registration_no: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[int] = mapped_column(BigInteger)


class FinancingPolicy(Base):
    __tablename__ = "financing_policies"
    financier: Mapped[str] = mapped_column(ADDRESS, primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    max_amount: Mapped[int] = mapped_column(Amount)
    max_tenor_days: Mapped[int] = mapped_column(Integer)
    allowed_obligors: Mapped[str] = mapped_column(Text)  # JSON list of addresses
    annual_rate_bps: Mapped[int] = mapped_column(Integer)
    fee_bps: Mapped[int] = mapped_column(Integer)
    recourse: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class NonceRow(Base):
    __tablename__ = "nonces"
    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    address: Mapped[str] = mapped_column(ADDRESS, primary_key=True)
    next_nonce: Mapped[int] = mapped_column(BigInteger)


class AutoDecision(Base):
    """One auto-approval attempt per financing: whichever API worker claims it acts."""

    __tablename__ = "auto_decisions"
    financing_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    financier: Mapped[str] = mapped_column(ADDRESS)
    outcome: Mapped[str] = mapped_column(String(32))  # claimed, approved, declined, failed
    detail: Mapped[str | None] = mapped_column(Text)
    tx_hash: Mapped[str | None] = mapped_column(HASH)
    decided_at: Mapped[int] = mapped_column(BigInteger)


class ConsoleSession(Base):
    __tablename__ = "console_sessions"
    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    member: Mapped[str] = mapped_column(ADDRESS)
    api_key_id: Mapped[str] = mapped_column(String(32))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


class WebhookEndpoint(Base):
    """A member's webhook: where to push which events, its signing secret (sealed, AES-GCM
    under the webhook key) and, during a rotation, the previous one until ``previous_until``."""

    __tablename__ = "webhook_endpoints"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(ADDRESS, index=True)
    url: Mapped[str] = mapped_column(String(2048))
    event_types: Mapped[str] = mapped_column(Text)  # JSON list of event names, or ["*"]
    description: Mapped[str | None] = mapped_column(String(200))
    secret: Mapped[str] = mapped_column(Text)  # sealed
    previous_secret: Mapped[str | None] = mapped_column(Text)  # sealed
    previous_until: Mapped[int | None] = mapped_column(BigInteger)  # seconds
    status: Mapped[str] = mapped_column(String(16))  # active, failing, deleted
    failing_reason: Mapped[str | None] = mapped_column(Text)
    failing_since: Mapped[int | None] = mapped_column(BigInteger)
    #: Outbox entries up to this one were mirrored before the endpoint existed: not for it.
    from_seq: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)


class WebhookDelivery(Base):
    """One event for one endpoint: its body fixed when queued (a redelivery sends the same
    bytes), and where its attempts stand. Deliveries of one endpoint and one object key go
    out in ``seq`` (chain) order, each once the one before it succeeded."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_queue", "endpoint_id", "object_key", "seq"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    endpoint_id: Mapped[str] = mapped_column(String(32))
    seq: Mapped[int] = mapped_column(BigInteger)  # the outbox entry (0 for a ping)
    event_id: Mapped[str] = mapped_column(String(40))
    event_type: Mapped[str] = mapped_column(String(72))
    object_key: Mapped[str] = mapped_column(String(80))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # pending, succeeded, failed, cancelled
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[int] = mapped_column(BigInteger)  # ms
    lease_until: Mapped[int] = mapped_column(BigInteger)  # ms; a dispatcher holds it till then
    lease_owner: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[int] = mapped_column(BigInteger)  # ms
    block_time: Mapped[int | None] = mapped_column(BigInteger)  # s, the event's block
    delivered_at: Mapped[int | None] = mapped_column(BigInteger)  # ms
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)


class WebhookAttempt(Base):
    """Each attempt of a delivery, as its owner sees it."""

    __tablename__ = "webhook_attempts"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    delivery_id: Mapped[int] = mapped_column(BigInteger, index=True)
    attempted_at: Mapped[int] = mapped_column(BigInteger)  # ms
    latency_ms: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    ok: Mapped[bool] = mapped_column(Boolean)


class WebhookCursor(Base):
    """The last outbox entry queued for the endpoints (one row; fan-out locks it)."""

    __tablename__ = "webhook_cursor"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)


__all__ = [
    "API_HISTORY",
    "ApiKey",
    "Approval",
    "AuditHead",
    "AuditPending",
    "AuditRecord",
    "AutoDecision",
    "Base",
    "ConsoleSession",
    "CreditLine",
    "FinancingPolicy",
    "IdempotencyRecord",
    "IntentRow",
    "InvoiceDetails",
    "KeystoreEntry",
    "MemberProfile",
    "NonceRow",
    "OrgUser",
    "WebhookAttempt",
    "WebhookCursor",
    "WebhookDelivery",
    "WebhookEndpoint",
    "migrate",
]
