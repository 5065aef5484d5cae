"""audit_log.request_id: each record names its request's X-Request-Id (issue 11)

Revision ID: api_0007_audit_request_id
Revises: api_0006_intents
Create Date: 2026-12-06 21:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "api_0007_audit_request_id"
down_revision: str | None = "api_0006_intents"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("request_id", sa.String(length=32), nullable=True))
        batch.create_index("ix_audit_log_request_id", ["request_id"])


def downgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_index("ix_audit_log_request_id")
        batch.drop_column("request_id")
