"""consent: custody of members, organisation users, dual control and approvals

Revision ID: api_0004_consent
Revises: api_0003
Create Date: 2026-12-06 20:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "api_0004_consent"
down_revision: str | None = "api_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("member_profiles", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("custody", sa.String(length=8), nullable=False, server_default="hosted")
        )
        batch_op.add_column(
            sa.Column("dual_control", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("user_id", sa.String(length=32), nullable=True))
    op.create_table(
        "org_users",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("member", sa.String(length=42), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_org_users")),
    )
    with op.batch_alter_table("org_users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_org_users_member"), ["member"], unique=False)
    op.create_table(
        "approvals",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("member", sa.String(length=42), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("path", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("request_sha256", sa.String(length=64), nullable=False),
        sa.Column("operation", sa.String(length=64), nullable=False),
        sa.Column("arguments", sa.Text(), nullable=False),
        sa.Column("maker_key_id", sa.String(length=32), nullable=False),
        sa.Column("maker_user_id", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("checker_key_id", sa.String(length=32), nullable=True),
        sa.Column("checker_user_id", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("decided_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approvals")),
        sa.UniqueConstraint(
            "member", "idempotency_key", name=op.f("uq_approvals_member_idempotency_key")
        ),
    )


def downgrade() -> None:
    op.drop_table("approvals")
    with op.batch_alter_table("org_users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_org_users_member"))
    op.drop_table("org_users")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("user_id")
    with op.batch_alter_table("member_profiles", schema=None) as batch_op:
        batch_op.drop_column("dual_control")
        batch_op.drop_column("custody")
