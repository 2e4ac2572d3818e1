"""an index on dose_order.planned_use_at: the lab's order queue sorts and filters by it

Revision ID: 0017
Revises: 0013
Create Date: 2026-12-03 14:10:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_dose_order_planned_use_at", "dose_order", ["planned_use_at"])


def downgrade() -> None:
    op.drop_index("ix_dose_order_planned_use_at", table_name="dose_order")
