"""dose_logger_file: the shipment's temperature-logger file kept at receipt

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04 18:06:41.525571
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import lims.db

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dose_logger_file",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dose_id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("readings", sa.Integer(), nullable=False),
        sa.Column("uploaded_by_id", sa.Integer(), nullable=False),
        sa.Column("uploaded_at", lims.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dose_id"], ["material.id"], name=op.f("fk_dose_logger_file_dose_id_material")
        ),
        sa.ForeignKeyConstraint(
            ["uploaded_by_id"],
            ["lims_user.id"],
            name=op.f("fk_dose_logger_file_uploaded_by_id_lims_user"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dose_logger_file")),
        sa.UniqueConstraint("dose_id", name=op.f("uq_dose_logger_file_dose_id")),
    )


def downgrade() -> None:
    op.drop_table("dose_logger_file")
