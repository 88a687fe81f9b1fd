"""reflag: store the flags of the checks added since 0005 (unfilled_placeholder, personal_data,
private_person_question) on the records already stored, since flags are only recomputed when a record's text changes

Revision ID: 0012_reflag
Revises: 0005_record_flags
"""
from alembic import op
import sqlalchemy as sa

revision = "0012_reflag"
down_revision = "0005_record_flags"
branch_labels = None
depends_on = None

NEW_FLAGS = ("unfilled_placeholder", "personal_data", "private_person_question")


def upgrade() -> None:
    from curation.quality.records import record_flags

    connection = op.get_bind()
    record_flag = sa.table("record_flag", sa.column("record_id", sa.Integer), sa.column("flag", sa.String))
    record = sa.table("record", sa.column("id", sa.Integer), sa.column("instruction", sa.Text),
                      sa.column("input", sa.Text), sa.column("outputs", sa.JSON))
    # Only the new flags are written: the stored ones are already today's, and rewriting them all would be slower.
    connection.execute(record_flag.delete().where(record_flag.c.flag.in_(NEW_FLAGS)))
    last_id = 0
    while True:
        rows = connection.execute(sa.select(record).where(record.c.id > last_id).order_by(record.c.id)
                                  .limit(5000)).all()
        if not rows:
            return
        flags = [{"record_id": r.id, "flag": name} for r in rows
                 for name in record_flags(r.instruction, r.input, r.outputs or []) if name in NEW_FLAGS]
        if flags:
            connection.execute(record_flag.insert(), flags)
        last_id = rows[-1].id


def downgrade() -> None:
    op.get_bind().execute(sa.text("DELETE FROM record_flag WHERE flag IN "
                                  "('unfilled_placeholder', 'personal_data', 'private_person_question')"))
