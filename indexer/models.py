"""The SQL mirror: one table per object of SPEC §2, the raw events, headers, checkpoint.

Names follow the contracts' vocabulary: a ``ClaimSplit`` event is applied by
``on_claim_split`` to ``claims`` (``parent_id``, ``depth``). Addresses are 0x-checksummed
strings, hashes and ids of invoices 0x-hex strings, amounts :class:`~db.types.Amount`
(exact on SQLite and PostgreSQL), times UNIX seconds, statuses the lower-case names of the
contracts' enums. The indexer is the only writer of these tables; the API reads them.

Bookkeeping tables: ``events`` (every log of the deployment's contracts, decoded), the
``block_headers`` of the recent window (reorg detection), ``journal`` (the row images a
reorganisation restores) and ``checkpoint`` (the last block wholly mirrored).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import (
    BigInteger,
    Boolean,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from db.migrate import History, upgrade
from db.types import ADDRESS, HASH, NAMING, STATUS, Amount, table_of

#: The mirror's Alembic history (``indexer/migrations``).
MIRROR_HISTORY = History(
    "mirror", Path(__file__).resolve().parent / "migrations", "alembic_version_mirror"
)


async def migrate(engine: AsyncEngine) -> None:
    """Bring the mirror's tables to the head of their history (the indexer at start; the API
    too, since it reads them)."""
    await upgrade(engine, MIRROR_HISTORY)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


# -- domain objects ------------------------------------------------------------------------


class Member(Base):
    """A registered organisation (MemberRegistry)."""

    __tablename__ = "members"
    address: Mapped[str] = mapped_column(ADDRESS, primary_key=True)
    status: Mapped[str] = mapped_column(STATUS)
    kyc_expires_at: Mapped[int] = mapped_column(BigInteger)
    roles: Mapped[int] = mapped_column(Integer)  # the rolesOf bit mask
    suspension_reason: Mapped[str | None] = mapped_column(HASH)
    registered_block: Mapped[int] = mapped_column(BigInteger)


class RoleGrant(Base):
    """An AccessControl role held by an account (members and the platform's own contracts)."""

    __tablename__ = "role_grants"
    role: Mapped[str] = mapped_column(HASH, primary_key=True)
    account: Mapped[str] = mapped_column(ADDRESS, primary_key=True)
    granted_block: Mapped[int] = mapped_column(BigInteger)


class Invoice(Base):
    """A trade invoice (InvoiceRegistry); ``id`` is its fingerprint."""

    __tablename__ = "invoices"
    id: Mapped[str] = mapped_column(HASH, primary_key=True)
    seller: Mapped[str] = mapped_column(ADDRESS, index=True)
    buyer: Mapped[str] = mapped_column(ADDRESS, index=True)
    amount: Mapped[int] = mapped_column(Amount)
    issue_date: Mapped[int] = mapped_column(BigInteger)
    document_hash: Mapped[str] = mapped_column(HASH)
    status: Mapped[str] = mapped_column(STATUS)
    payable_id: Mapped[int | None] = mapped_column(BigInteger)  # backs this payable
    claim_id: Mapped[int | None] = mapped_column(BigInteger)  # or the transfer of this piece
    registered_block: Mapped[int] = mapped_column(BigInteger)


class Payable(Base):
    """A confirmed payable (ClaimLedger slot)."""

    __tablename__ = "payables"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    obligor: Mapped[str] = mapped_column(ADDRESS, index=True)
    supplier: Mapped[str] = mapped_column(ADDRESS, index=True)
    face_value: Mapped[int] = mapped_column(Amount)
    settled_value: Mapped[int] = mapped_column(Amount)
    due_date: Mapped[int] = mapped_column(BigInteger)
    issued_at: Mapped[int] = mapped_column(BigInteger)
    clearing_agent: Mapped[str | None] = mapped_column(ADDRESS)
    root_claim_id: Mapped[int] = mapped_column(BigInteger)
    long_term: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(STATUS)
    issued_block: Mapped[int] = mapped_column(BigInteger)


class PayableInvoice(Base):
    """The invoices a payable was issued against, in the order given."""

    __tablename__ = "payable_invoices"
    payable_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    invoice_id: Mapped[str] = mapped_column(HASH, index=True)
    block_number: Mapped[int] = mapped_column(BigInteger, index=True)


class Claim(Base):
    """A claim piece (ERC-3525 token): ``parent_id`` and ``depth`` give its lineage."""

    __tablename__ = "claims"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    payable_id: Mapped[int] = mapped_column(BigInteger, index=True)
    parent_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    depth: Mapped[int] = mapped_column(Integer)
    holder: Mapped[str] = mapped_column(ADDRESS, index=True)
    amount: Mapped[int] = mapped_column(Amount)
    locked_amount: Mapped[int] = mapped_column(Amount)
    status: Mapped[str] = mapped_column(STATUS)
    frozen: Mapped[bool] = mapped_column(Boolean)
    financed: Mapped[bool] = mapped_column(Boolean)
    due_date: Mapped[int] = mapped_column(BigInteger)
    invoice_id: Mapped[str | None] = mapped_column(HASH)  # trade background of its creation
    created_block: Mapped[int] = mapped_column(BigInteger)


class Financing(Base):
    """A financing request (FinancingDesk) and, once decided, its terms."""

    __tablename__ = "financings"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    claim_id: Mapped[int] = mapped_column(BigInteger, index=True)
    applicant: Mapped[str] = mapped_column(ADDRESS, index=True)
    financier: Mapped[str] = mapped_column(ADDRESS, index=True)
    obligor: Mapped[str] = mapped_column(ADDRESS, index=True)
    amount: Mapped[int] = mapped_column(Amount)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(STATUS)
    advance: Mapped[int] = mapped_column(Amount)
    discount: Mapped[int] = mapped_column(Amount)
    fees: Mapped[int] = mapped_column(Amount)
    annual_rate_bps: Mapped[int] = mapped_column(Integer)
    #: Committed by the applicant at apply time (the approval must honour both).
    recourse: Mapped[bool] = mapped_column(Boolean)
    min_advance: Mapped[int] = mapped_column(Amount, server_default="0")
    registration_no: Mapped[str | None] = mapped_column(HASH)
    disbursement_ref: Mapped[str | None] = mapped_column(HASH)
    financed_claim_id: Mapped[int | None] = mapped_column(BigInteger)
    reason_hash: Mapped[str | None] = mapped_column(HASH)
    applied_block: Mapped[int] = mapped_column(BigInteger)


class Settlement(Base):
    """The recorded payment of one piece at maturity (a piece settles once)."""

    __tablename__ = "settlements"
    claim_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    payable_id: Mapped[int] = mapped_column(BigInteger, index=True)
    holder: Mapped[str] = mapped_column(ADDRESS, index=True)
    amount: Mapped[int] = mapped_column(Amount)
    payment_ref: Mapped[str] = mapped_column(HASH)
    block_number: Mapped[int] = mapped_column(BigInteger, index=True)
    tx_hash: Mapped[str] = mapped_column(HASH)


class ObligorAccount(Base):
    """A core enterprise's program limit and outstanding face value (ClaimLedger)."""

    __tablename__ = "obligor_accounts"
    obligor: Mapped[str] = mapped_column(ADDRESS, primary_key=True)
    program_limit: Mapped[int] = mapped_column(Amount)
    outstanding: Mapped[int] = mapped_column(Amount)
    previous_overdue_at: Mapped[int] = mapped_column(BigInteger)
    last_overdue_at: Mapped[int] = mapped_column(BigInteger)


class Exposure(Base):
    """A financier's financed value outstanding on one obligor, and its limit."""

    __tablename__ = "exposures"
    financier: Mapped[str] = mapped_column(ADDRESS, primary_key=True)
    obligor: Mapped[str] = mapped_column(ADDRESS, primary_key=True)
    outstanding: Mapped[int] = mapped_column(Amount)
    exposure_limit: Mapped[int] = mapped_column(Amount)


class PlatformState(Base):
    """Platform-wide switches (``paused``)."""

    __tablename__ = "platform_state"
    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


# -- bookkeeping -----------------------------------------------------------------------------


class Event(Base):
    """Every log of the deployment's contracts, decoded; ``(block_hash, log_index)`` unique."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("block_hash", "log_index"),
        Index("ix_events_event_block", "event", "block_number"),
        # The feed's filters, each in chain order; partial (most events lack most ids), and
        # none on tx_hash: random keys were the costliest index of a backfill, and a
        # transaction's events are found from its receipt's block number instead.
        *(
            Index(
                f"ix_events_{column}",
                column,
                "block_number",
                "log_index",
                sqlite_where=text(f"{column} IS NOT NULL"),
                postgresql_where=text(f"{column} IS NOT NULL"),
            )
            for column in ("claim_id", "payable_id", "financing_id", "invoice_id", "account")
        ),
    )
    block_number: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    log_index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    block_hash: Mapped[str] = mapped_column(HASH)
    block_time: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(HASH)
    tx_index: Mapped[int] = mapped_column(Integer)
    contract: Mapped[str] = mapped_column(String(32))
    event: Mapped[str] = mapped_column(String(64))
    args: Mapped[str] = mapped_column(Text)  # JSON; integers exact
    claim_id: Mapped[int | None] = mapped_column(BigInteger)
    payable_id: Mapped[int | None] = mapped_column(BigInteger)
    financing_id: Mapped[int | None] = mapped_column(BigInteger)
    invoice_id: Mapped[str | None] = mapped_column(HASH)
    account: Mapped[str | None] = mapped_column(ADDRESS)


class BlockHeader(Base):
    """A recent block header, kept for the reorg window."""

    __tablename__ = "block_headers"
    number: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(HASH)
    parent_hash: Mapped[str] = mapped_column(HASH)
    timestamp: Mapped[int] = mapped_column(BigInteger)


class JournalEntry(Base):
    """A row's image before its first change in a block (``image`` null: it did not exist)."""

    __tablename__ = "journal"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    block_number: Mapped[int] = mapped_column(BigInteger, index=True)
    table_name: Mapped[str] = mapped_column(String(32))
    row_key: Mapped[str] = mapped_column(Text)  # JSON list of the primary key values
    image: Mapped[str | None] = mapped_column(Text)  # JSON object of the row, or null


class OutboxEntry(Base):
    """A mirrored event waiting to be pushed to webhooks (:mod:`indexer.outbox`).

    Written in the batch's own transaction, so an event is in the outbox iff it is mirrored.
    A reorganisation never deletes an entry: it marks it ``reverted`` and appends a
    ``reverted`` entry (``<Event>Reverted``) pointing back at it (``reverts``), so whoever
    already received the event is told it is gone.
    """

    __tablename__ = "outbox"
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(40), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # "event" or "reverted"
    event: Mapped[str] = mapped_column(String(72))  # "ClaimSplit", "ClaimSplitReverted"
    contract: Mapped[str] = mapped_column(String(32))
    block_number: Mapped[int] = mapped_column(BigInteger, index=True)
    log_index: Mapped[int] = mapped_column(Integer)
    block_hash: Mapped[str] = mapped_column(HASH)
    block_time: Mapped[int] = mapped_column(BigInteger)
    object_key: Mapped[str] = mapped_column(String(80))  # "claim:12": deliveries ordered per key
    data: Mapped[str] = mapped_column(Text)  # JSON: {"event": {...}, "object": {...} | null}
    reverted: Mapped[bool] = mapped_column(Boolean)
    reverts: Mapped[int | None] = mapped_column(BigInteger)  # seq of the entry it retracts


class IndexerStatus(Base):
    """The running indexer's heartbeat: written after every pass over the chain (at most once
    a second), so the API can tell a live indexer from a dead or paused one (/health,
    /metrics)."""

    __tablename__ = "indexer_status"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    heartbeat_ms: Mapped[int] = mapped_column(BigInteger)
    head_block: Mapped[int] = mapped_column(BigInteger)
    checkpoint_block: Mapped[int] = mapped_column(BigInteger)
    pid: Mapped[int] = mapped_column(Integer)


class Checkpoint(Base):
    """The last block wholly mirrored, and which chain and deployment the mirror belongs to."""

    __tablename__ = "checkpoint"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    deployment: Mapped[str] = mapped_column(Text)  # JSON {name: address}
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(HASH)
    #: Every block above ``journaled_from - 1`` has its journal: a reorg may roll back to it.
    journaled_from: Mapped[int] = mapped_column(BigInteger)


#: Domain tables, the ones a rebuild must reproduce (the digest covers these and ``events``).
DOMAIN_TABLES: tuple[Table, ...] = tuple(
    table_of(m)
    for m in (
        Member,
        RoleGrant,
        Invoice,
        Payable,
        PayableInvoice,
        Claim,
        Financing,
        Settlement,
        ObligorAccount,
        Exposure,
        PlatformState,
    )
)

__all__ = [
    "DOMAIN_TABLES",
    "MIRROR_HISTORY",
    "Base",
    "BlockHeader",
    "Checkpoint",
    "Claim",
    "Event",
    "Exposure",
    "Financing",
    "IndexerStatus",
    "Invoice",
    "JournalEntry",
    "Member",
    "ObligorAccount",
    "OutboxEntry",
    "Payable",
    "PayableInvoice",
    "PlatformState",
    "RoleGrant",
    "Settlement",
    "migrate",
]
