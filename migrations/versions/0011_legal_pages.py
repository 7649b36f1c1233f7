"""legal: versioned Impressum and privacy notice of the deployment and of each event, consents to the notice

Revision ID: 0011_legal_pages
Revises: 0010_account_rights

No texts exist at the upgrade, so nobody is asked anything until an administrator publishes a privacy notice;
from then on every account (existing ones too) is asked once to accept it.
"""
import sqlalchemy as sa
from alembic import op

revision = "0011_legal_pages"
down_revision = "0010_account_rights"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('legal_texts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_legal_texts_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_legal_texts_event_id_events'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_legal_texts')),
    sa.UniqueConstraint('event_id', 'kind', 'number', name='uq_legal_texts_event_kind_number')
    )
    with op.batch_alter_table('legal_texts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_legal_texts_created_by_id'), ['created_by_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_legal_texts_event_id'), ['event_id'], unique=False)
        batch_op.create_index('uq_legal_texts_site_kind_number', ['kind', 'number'], unique=True,
                              sqlite_where=sa.text('event_id IS NULL'),
                              postgresql_where=sa.text('event_id IS NULL'))

    op.create_table('privacy_consents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('legal_text_id', sa.Integer(), nullable=False),
    sa.Column('accepted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['legal_text_id'], ['legal_texts.id'], name=op.f('fk_privacy_consents_legal_text_id_legal_texts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_privacy_consents_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_privacy_consents')),
    sa.UniqueConstraint('user_id', 'legal_text_id', name='uq_privacy_consents_user_text')
    )
    with op.batch_alter_table('privacy_consents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_privacy_consents_legal_text_id'), ['legal_text_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_privacy_consents_user_id'), ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('privacy_consents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_privacy_consents_user_id'))
        batch_op.drop_index(batch_op.f('ix_privacy_consents_legal_text_id'))
    op.drop_table('privacy_consents')
    with op.batch_alter_table('legal_texts', schema=None) as batch_op:
        batch_op.drop_index('uq_legal_texts_site_kind_number')
        batch_op.drop_index(batch_op.f('ix_legal_texts_event_id'))
        batch_op.drop_index(batch_op.f('ix_legal_texts_created_by_id'))
    op.drop_table('legal_texts')
