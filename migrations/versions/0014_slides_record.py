"""events: organisers mark the published slides as the event's record (kept when an uploader deletes the account)

Revision ID: 0014_slides_record
Revises: 0013_attendee_mails
"""
import sqlalchemy as sa
from alembic import op

revision = "0014_slides_record"
down_revision = "0013_attendee_mails"
branch_labels = None
depends_on = None


def upgrade():
    # Existing events are not marked: a deleted account takes its slides with it until the organisers say so.
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('keeps_slides_as_record', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade():
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_column('keeps_slides_as_record')
