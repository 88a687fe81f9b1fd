"""tags, comments and undoable bulk actions

Revision ID: 0022_review_tools
Revises: 0021_assignments
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "0022_review_tools"
down_revision = "0021_assignments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
