"""indexes for the order lists paged by key: a clinic's orders by status and date, the
lab's queue by status and planned use

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03 21:20:00.000000

Each ends in the order id, the tie-breaker of every list (lims.paging.keyset_page), so a
page "after (key, id)" is one index range and never a sort of the clinic's whole history.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_dose_order_clinic_status_placed": ["clinic_id", "status", "placed_at", "id"],
    "ix_dose_order_clinic_status_planned": ["clinic_id", "status", "planned_use_at", "id"],
    "ix_dose_order_clinic_placed": ["clinic_id", "placed_at", "id"],
    "ix_dose_order_status_planned": ["status", "planned_use_at", "id"],
}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, "dose_order", columns)


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="dose_order")
