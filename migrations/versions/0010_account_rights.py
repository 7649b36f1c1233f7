"""accounts: password-reset links that a newer one voids, deleted accounts kept as anonymous rows

Revision ID: 0010_account_rights
Revises: 0009_mail_queue
"""
import sqlalchemy as sa
from alembic import op

revision = "0010_account_rights"
down_revision = "0009_mail_queue"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('password_reset_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('deleted_at')
        batch_op.drop_column('password_reset_at')
