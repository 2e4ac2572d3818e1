"""custody checkpoints (signed Merkle tree heads) and their RFC 3161 timestamps

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 14:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import lims.db

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "custody_checkpoint"
STAMPS = "custody_timestamp"
APPEND_ONLY = (TABLE, STAMPS)


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tree_size", sa.Integer(), nullable=False),
        sa.Column("root_hash", sa.String(length=64), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.Column("made_at", lims.db.UTCDateTime(), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_custody_checkpoint")),
    )
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_custody_checkpoint_tree_size"), ["tree_size"], unique=False
        )
    op.create_table(
        STAMPS,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("checkpoint_id", sa.Integer(), nullable=False),
        sa.Column("tsa_url", sa.String(length=300), nullable=False),
        sa.Column("response", sa.LargeBinary(), nullable=False),
        sa.Column("stamped_at", lims.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["checkpoint_id"],
            ["custody_checkpoint.id"],
            name=op.f("fk_custody_timestamp_checkpoint_id_custody_checkpoint"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_custody_timestamp")),
        sa.UniqueConstraint("checkpoint_id", name=op.f("uq_custody_timestamp_checkpoint_id")),
    )
    # Append-only like the events (0002): a signed head or its timestamp is never edited
    # or removed.
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table in APPEND_ONLY:
        if postgresql:
            op.execute(f"""
                CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
                FOR EACH ROW EXECUTE FUNCTION lims_refuse_ledger_change()
            """)
            op.execute(f"""
                CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
                FOR EACH STATEMENT EXECUTE FUNCTION lims_refuse_ledger_change()
            """)
            continue
        for operation in ("UPDATE", "DELETE"):
            op.execute(f"""
                CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table}
                BEGIN
                    SELECT RAISE(ABORT,
                        'custody ledger is append-only: {operation} on {table} refused');
                END
            """)


def downgrade() -> None:
    for table in APPEND_ONLY:
        if op.get_bind().dialect.name == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
    op.drop_table(STAMPS)
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_custody_checkpoint_tree_size"))
    op.drop_table(TABLE)
