"""quality flags: the checks each record fails, stored so that browse filters and stats count them in SQL

Revision ID: 0005_record_flags
Revises: 0001_initial
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "0005_record_flags"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

BATCH = 5000


def upgrade() -> None:
    record_flag = op.create_table(
        "record_flag",
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("flag", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.ForeignKeyConstraint(["record_id"], ["record.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("record_id", "flag"),
    )
    op.create_index("ix_record_flag_flag_record", "record_flag", ["flag", "record_id"])
    backfill(op.get_bind(), record_flag)


def backfill(connection: sa.Connection, record_flag: sa.Table) -> None:
    """Flag the records already stored, a batch at a time, with today's checks.

    A later change to the checks (one added, one reworded into another rule) needs a migration that reflags,
    as this one does, since stored flags are only recomputed when a record's text changes.
    """
    from curation.quality.records import record_flags

    record = sa.table("record", sa.column("id", sa.Integer), sa.column("instruction", sa.Text),
                      sa.column("input", sa.Text), sa.column("outputs", sa.JSON))
    last_id = 0
    while True:
        rows = connection.execute(sa.select(record).where(record.c.id > last_id).order_by(record.c.id)
                                  .limit(BATCH)).all()
        if not rows:
            return
        flags = [{"record_id": r.id, "flag": name} for r in rows
                 for name in record_flags(r.instruction, r.input, r.outputs or [])]
        if flags:
            connection.execute(record_flag.insert(), flags)
        last_id = rows[-1].id


def downgrade() -> None:
    op.drop_index("ix_record_flag_flag_record", table_name="record_flag")
    op.drop_table("record_flag")
