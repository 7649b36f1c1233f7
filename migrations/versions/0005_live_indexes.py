"""live layer: index for the deleted messages a catching-up client is told about

Revision ID: 0005_live_indexes
Revises: 0004_live
"""
from alembic import op

revision = "0005_live_indexes"
down_revision = "0004_live"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('chat_messages', schema=None) as batch_op:
        batch_op.create_index('ix_chat_messages_room_deleted_at', ['room', 'deleted_at'], unique=False)


def downgrade():
    with op.batch_alter_table('chat_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_chat_messages_room_deleted_at')
