"""indexes for search and the clinic portal's orders list

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 13:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_dose_order_clinic_planned", "dose_order", ["clinic_id", "planned_use_at"])
    op.create_index("ix_patient_identifier_2", "patient", ["identifier_2"])
    op.create_index("ix_reagent_lot_lot_number", "reagent_lot", ["lot_number"])


def downgrade() -> None:
    op.drop_index("ix_reagent_lot_lot_number", table_name="reagent_lot")
    op.drop_index("ix_patient_identifier_2", table_name="patient")
    op.drop_index("ix_dose_order_clinic_planned", table_name="dose_order")
