"""lot recalls: recall, recall_item, recall_clinic

Revision ID: 0018
Revises: 0011
Create Date: 2026-12-03 20:38:53.999487
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import lims.db

revision: str = "0018"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "recall",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=16), nullable=False),
        sa.Column("lot_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("opened_by_id", sa.Integer(), nullable=False),
        sa.Column("opened_at", lims.db.UTCDateTime(), nullable=False),
        sa.Column("open_signature_id", sa.Integer(), nullable=True),
        sa.Column("closed_by_id", sa.Integer(), nullable=True),
        sa.Column("closed_at", lims.db.UTCDateTime(), nullable=True),
        sa.Column("close_signature_id", sa.Integer(), nullable=True),
        sa.Column("override_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["close_signature_id"],
            ["signature.id"],
            name=op.f("fk_recall_close_signature_id_signature"),
        ),
        sa.ForeignKeyConstraint(
            ["closed_by_id"], ["lims_user.id"], name=op.f("fk_recall_closed_by_id_lims_user")
        ),
        sa.ForeignKeyConstraint(
            ["lot_id"], ["material.id"], name=op.f("fk_recall_lot_id_material")
        ),
        sa.ForeignKeyConstraint(
            ["open_signature_id"],
            ["signature.id"],
            name=op.f("fk_recall_open_signature_id_signature"),
        ),
        sa.ForeignKeyConstraint(
            ["opened_by_id"], ["lims_user.id"], name=op.f("fk_recall_opened_by_id_lims_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recall")),
        sa.UniqueConstraint("number", name=op.f("uq_recall_number")),
    )
    with op.batch_alter_table("recall", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recall_lot_id"), ["lot_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_recall_status"), ["status"], unique=False)

    op.create_table(
        "recall_clinic",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recall_id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("notification_id", sa.Integer(), nullable=False),
        sa.Column("closed_notification_id", sa.Integer(), nullable=True),
        sa.Column("acknowledged_at", lims.db.UTCDateTime(), nullable=True),
        sa.Column("acknowledged_by_id", sa.Integer(), nullable=True),
        sa.Column("acknowledgement_note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["acknowledged_by_id"],
            ["lims_user.id"],
            name=op.f("fk_recall_clinic_acknowledged_by_id_lims_user"),
        ),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinic.id"], name=op.f("fk_recall_clinic_clinic_id_clinic")
        ),
        sa.ForeignKeyConstraint(
            ["closed_notification_id"],
            ["notification.id"],
            name=op.f("fk_recall_clinic_closed_notification_id_notification"),
        ),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notification.id"],
            name=op.f("fk_recall_clinic_notification_id_notification"),
        ),
        sa.ForeignKeyConstraint(
            ["recall_id"], ["recall.id"], name=op.f("fk_recall_clinic_recall_id_recall")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recall_clinic")),
        sa.UniqueConstraint(
            "recall_id", "clinic_id", name=op.f("uq_recall_clinic_recall_id_clinic_id")
        ),
    )
    with op.batch_alter_table("recall_clinic", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recall_clinic_clinic_id"), ["clinic_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_recall_clinic_recall_id"), ["recall_id"], unique=False)

    op.create_table(
        "recall_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recall_id", sa.Integer(), nullable=False),
        sa.Column("material_id", sa.Integer(), nullable=False),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("state_before", sa.String(length=24), nullable=False),
        sa.Column("state_after", sa.String(length=24), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("clinic_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinic.id"], name=op.f("fk_recall_item_clinic_id_clinic")
        ),
        sa.ForeignKeyConstraint(
            ["material_id"], ["material.id"], name=op.f("fk_recall_item_material_id_material")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["dose_order.id"], name=op.f("fk_recall_item_order_id_dose_order")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient.id"], name=op.f("fk_recall_item_patient_id_patient")
        ),
        sa.ForeignKeyConstraint(
            ["recall_id"], ["recall.id"], name=op.f("fk_recall_item_recall_id_recall")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recall_item")),
    )
    with op.batch_alter_table("recall_item", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_recall_item_material_id"), ["material_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_recall_item_recall_id"), ["recall_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("recall_item", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recall_item_recall_id"))
        batch_op.drop_index(batch_op.f("ix_recall_item_material_id"))

    op.drop_table("recall_item")
    with op.batch_alter_table("recall_clinic", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recall_clinic_recall_id"))
        batch_op.drop_index(batch_op.f("ix_recall_clinic_clinic_id"))

    op.drop_table("recall_clinic")
    with op.batch_alter_table("recall", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recall_status"))
        batch_op.drop_index(batch_op.f("ix_recall_lot_id"))

    op.drop_table("recall")
