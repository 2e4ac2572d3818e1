"""token version and sign-in throttle

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 13:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import lims.db

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sign_in_throttle",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", lims.db.UTCDateTime(), nullable=False),
        sa.Column("blocked_until", lims.db.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_throttle")),
        sa.UniqueConstraint("scope", "key", name=op.f("uq_sign_in_throttle_scope_key")),
    )
    # Tokens issued before the upgrade carry no version and are refused: everybody signs
    # in again once (access tokens lasted 15 minutes anyway).
    with op.batch_alter_table("lims_user", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("token_version", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("lims_user", schema=None) as batch_op:
        batch_op.drop_column("token_version")
    op.drop_table("sign_in_throttle")
