"""agenda: the frab guid a session was imported from, unique per event (schedule import, re-import)

Revision ID: 0015_import_guid
Revises: 0014_slides_record
"""
import sqlalchemy as sa
from alembic import op

revision = "0015_import_guid"
down_revision = "0014_slides_record"
branch_labels = None
depends_on = None


def upgrade():
    # Existing sessions were not imported: NULL, which the unique constraint allows any number of times.
    with op.batch_alter_table('conference_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('import_guid', sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint('uq_conference_sessions_event_import_guid', ['event_id', 'import_guid'])


def downgrade():
    with op.batch_alter_table('conference_sessions', schema=None) as batch_op:
        batch_op.drop_constraint('uq_conference_sessions_event_import_guid', type_='unique')
        batch_op.drop_column('import_guid')
