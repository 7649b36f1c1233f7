"""retention period for session feedback

Revision ID: 0021_feedback_retention
Revises: 0020_people
"""
import sqlalchemy as sa
from alembic import op


revision = "0021_feedback_retention"
down_revision = "0020_people"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("events") as batch_op:
        batch_op.add_column(sa.Column("feedback_retention_days", sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table("events") as batch_op:
        batch_op.drop_column("feedback_retention_days")
