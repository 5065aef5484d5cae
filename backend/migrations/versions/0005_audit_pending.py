"""api: audit_pending (requests that broadcast and have no audit record yet)

Revision ID: api_0005
Revises: api_0004_consent
Create Date: 2026-12-06 20:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "api_0005"
down_revision: str | None = "api_0004_consent"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_pending",
        sa.Column("request_id", sa.String(length=32), nullable=False),
        sa.Column("member", sa.String(length=42), nullable=True),
        sa.Column("api_key_id", sa.String(length=32), nullable=True),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("path", sa.String(length=300), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("request_sha256", sa.String(length=64), nullable=False),
        sa.Column("tx_hashes", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_audit_pending")),
    )
    with op.batch_alter_table("audit_pending", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_audit_pending_updated_at"), ["updated_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("audit_pending", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_pending_updated_at"))
    op.drop_table("audit_pending")
