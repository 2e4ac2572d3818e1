"""flow idempotency: the key of each non-step write a flow task made, with its result

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21 18:30:50.120769
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import lims.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "flow_idempotency",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("operation", sa.String(length=64), nullable=False),
        sa.Column("request_sha256", sa.String(length=64), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("created_at", lims.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flow_idempotency")),
        sa.UniqueConstraint("key", name=op.f("uq_flow_idempotency_key")),
    )


def downgrade() -> None:
    op.drop_table("flow_idempotency")
