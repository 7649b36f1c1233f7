"""events: one retention policy per event (questions and answers, votes, reports and sanctions, mail logs)

Revision ID: 0016_retention
Revises: 0015_import_guid
"""
import sqlalchemy as sa
from alembic import op

revision = "0016_retention"
down_revision = "0015_import_guid"
branch_labels = None
depends_on = None

COLUMNS = ("question_retention_days", "vote_retention_days", "report_retention_days", "mail_log_retention_days")


def upgrade():
    with op.batch_alter_table('events', schema=None) as batch_op:
        for name in COLUMNS:
            batch_op.add_column(sa.Column(name, sa.Integer(), nullable=True))
    # The old setting was shown as covering "chat and questions": events that set it keep that promise, now
    # for every kind of record of the live layer and the mail log.
    events = sa.table('events', sa.column('chat_retention_days', sa.Integer()),
                      *(sa.column(name, sa.Integer()) for name in COLUMNS))
    op.execute(events.update().where(events.c.chat_retention_days.is_not(None))
               .values({name: events.c.chat_retention_days for name in COLUMNS}))


def downgrade():
    with op.batch_alter_table('events', schema=None) as batch_op:
        for name in reversed(COLUMNS):
            batch_op.drop_column(name)
