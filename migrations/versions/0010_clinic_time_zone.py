"""a clinic's time zone (IANA name), for times shown to the clinic

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 12:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("clinic") as batch:
        batch.add_column(
            sa.Column(
                "time_zone", sa.String(length=64), nullable=False, server_default="Asia/Tokyo"
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("clinic") as batch:
        batch.drop_column("time_zone")
