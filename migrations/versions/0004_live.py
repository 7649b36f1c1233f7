"""live layer: chat, Q&A, moderation, announcements

Revision ID: 0004_live
Revises: 0003_presentations
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0004_live"
down_revision = "0003_presentations"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
