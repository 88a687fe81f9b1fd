"""provenance: where each record came from (origin), the state of its machine-written text, and per-field details

Revision ID: 0007_provenance
Revises: 0001_initial
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "0007_provenance"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

AutoString = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    with op.batch_alter_table("record") as batch:
        batch.add_column(sa.Column("origin", AutoString(length=20), nullable=False, server_default="human"))
        batch.add_column(sa.Column("machine_draft", AutoString(length=20), nullable=True))
        batch.add_column(sa.Column("provenance", sa.JSON(), nullable=True))
    # Records stored before provenance existed: those read from a file were imported, the rest typed in.
    op.execute("UPDATE record SET origin = 'imported' WHERE source_file IS NOT NULL OR created_by IS NULL"
               " OR task_id IN (SELECT id FROM task WHERE source_file IS NOT NULL)")
    op.create_index("ix_record_dataset_machine_draft", "record", ["dataset_id", "machine_draft"])


def downgrade() -> None:
    op.drop_index("ix_record_dataset_machine_draft", table_name="record")
    with op.batch_alter_table("record") as batch:
        batch.drop_column("provenance")
        batch.drop_column("machine_draft")
        batch.drop_column("origin")
