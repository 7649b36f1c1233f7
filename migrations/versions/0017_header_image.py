"""events: a header image (banner on the event's public pages)

Revision ID: 0017_header_image
Revises: 0016_retention
"""
import sqlalchemy as sa
from alembic import op

revision = "0017_header_image"
down_revision = "0016_retention"
branch_labels = None
depends_on = None


def upgrade():
    # Optional: an event without one shows no banner.
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('header_image_filename', sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_column('header_image_filename')
