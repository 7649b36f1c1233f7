"""announcement mails are queued by a job: how far it got and when it finished

Revision ID: 0022_announcement_fanout
Revises: 0021_feedback_retention
"""
import sqlalchemy as sa
from alembic import op


revision = "0022_announcement_fanout"
down_revision = "0021_feedback_retention"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("announcement_mails") as batch_op:
        batch_op.add_column(sa.Column("queued_through_user_id", sa.Integer(), nullable=False,
                                      server_default="0"))
        batch_op.add_column(sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True))
    # Announcements sent before this version queued their mails in the request: they are finished.
    announcements = sa.table("announcement_mails", sa.column("queued_at", sa.DateTime(timezone=True)),
                             sa.column("created_at", sa.DateTime(timezone=True)))
    op.execute(announcements.update().values(queued_at=announcements.c.created_at))


def downgrade():
    with op.batch_alter_table("announcement_mails") as batch_op:
        batch_op.drop_column("queued_at")
        batch_op.drop_column("queued_through_user_id")
