"""import mappings: the column mapping each dataset's last table import used, offered on the next one

Revision ID: 0011_import_mappings
Revises: 0001_initial
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "0011_import_mappings"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

AutoString = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "import_mapping",
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("mapping", sa.JSON(), nullable=False),
        sa.Column("updated_by", AutoString(), nullable=True),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["dataset_id"], ["dataset.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("dataset_id"),
    )


def downgrade() -> None:
    op.drop_table("import_mapping")
