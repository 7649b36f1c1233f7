"""accounts: confirmed e-mail addresses, roles waiting for the confirmation

Revision ID: 0008_account_verification
Revises: 0007_question_moderation

Accounts that exist at the upgrade count as unconfirmed (self-registration never proved an address), except
site administrators, whom an operator created. Roles they already hold stay; new grants wait.
"""
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0008_account_verification"
down_revision = "0007_question_moderation"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_verified_at', sa.DateTime(timezone=True), nullable=True))
    users = sa.table('users', sa.column('is_admin', sa.Boolean()),
                     sa.column('email_verified_at', sa.DateTime(timezone=True)))
    now = datetime.now(UTC)
    if op.get_bind().dialect.name == 'sqlite':
        now = now.replace(tzinfo=None)  # UTCDateTime stores naive UTC on SQLite
    op.execute(users.update().where(users.c.is_admin.is_(True)).values(email_verified_at=now))

    op.create_table('pending_roles',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('keep_higher', sa.Boolean(), nullable=False),
    sa.Column('granted_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_pending_roles_event_id_events'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['granted_by_id'], ['users.id'], name=op.f('fk_pending_roles_granted_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_pending_roles_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pending_roles')),
    sa.UniqueConstraint('event_id', 'user_id', name='uq_pending_roles_event_user')
    )
    with op.batch_alter_table('pending_roles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pending_roles_event_id'), ['event_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_pending_roles_granted_by_id'), ['granted_by_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_pending_roles_user_id'), ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('pending_roles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pending_roles_user_id'))
        batch_op.drop_index(batch_op.f('ix_pending_roles_granted_by_id'))
        batch_op.drop_index(batch_op.f('ix_pending_roles_event_id'))
    op.drop_table('pending_roles')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('email_verified_at')
