"""browse indexes: records of a dataset by status and last change, so a page is an index walk

Revision ID: 0004_browse_indexes
Revises: 0001_initial
"""
from alembic import op

revision = "0004_browse_indexes"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_record_browse_status_updated", "record", ["dataset_id", "status", "updated_at", "id"])
    op.create_index("ix_record_browse_updated", "record", ["dataset_id", "updated_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_record_browse_updated", table_name="record")
    op.drop_index("ix_record_browse_status_updated", table_name="record")
