"""speaker invitations, mail outbox, presentations

Revision ID: 0003_presentations
Revises: 0002_agenda
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0003_presentations"
down_revision = "0002_agenda"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
