"""assignments of records and tasks to annotators, and their answers

Revision ID: 0021_assignments
Revises: 0020_guidelines
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "0021_assignments"
down_revision = "0020_guidelines"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
