"""events: who sees the stream and meeting links (auto: members only when registration is restricted)

Revision ID: 0006_event_link_visibility
Revises: 0005_live_indexes
"""
import sqlalchemy as sa
from alembic import op

revision = "0006_event_link_visibility"
down_revision = "0005_live_indexes"
branch_labels = None
depends_on = None


def upgrade():
    # Existing events get "auto": their links become members-only exactly when registration needs a code or is
    # closed, which is what the events that restrict registration want; open events keep public links.
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('link_visibility', sa.String(length=10), nullable=False,
                                      server_default='auto'))


def downgrade():
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_column('link_visibility')
