"""events: branding (accent colour, logo) and footer links (imprint, privacy, contact); sessions: recording link

Revision ID: 0012_event_branding
Revises: 0011_legal_pages
"""
import sqlalchemy as sa
from alembic import op

revision = "0012_event_branding"
down_revision = "0011_legal_pages"
branch_labels = None
depends_on = None

COLUMNS = (("accent_color", 7), ("logo_filename", 64), ("imprint_url", 500), ("privacy_url", 500),
           ("contact_url", 500))


def upgrade():
    # All optional: an event without them keeps the platform's look and footer.
    with op.batch_alter_table('events', schema=None) as batch_op:
        for name, length in COLUMNS:
            batch_op.add_column(sa.Column(name, sa.String(length=length), nullable=True))
    with op.batch_alter_table('conference_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('recording_url', sa.String(length=500), nullable=True))


def downgrade():
    with op.batch_alter_table('conference_sessions', schema=None) as batch_op:
        batch_op.drop_column('recording_url')
    with op.batch_alter_table('events', schema=None) as batch_op:
        for name, _length in reversed(COLUMNS):
            batch_op.drop_column(name)
