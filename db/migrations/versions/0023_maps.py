"""2-D maps computed in the background and cached with the vectors

Revision ID: 0023_maps
Revises: 0022_review_tools
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "0023_maps"
down_revision = "0022_review_tools"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
