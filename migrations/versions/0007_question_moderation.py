"""live layer: moderators hide questions; questions can be reported like chat messages

Revision ID: 0007_question_moderation
Revises: 0005_live_indexes
"""
import sqlalchemy as sa
from alembic import op

revision = "0007_question_moderation"
down_revision = "0006_event_link_visibility"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('qa_questions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('hidden_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('hidden_by_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_qa_questions_hidden_by_id'), ['hidden_by_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_qa_questions_hidden_by_id_users'), 'users', ['hidden_by_id'],
                                    ['id'], ondelete='SET NULL')

    with op.batch_alter_table('chat_reports', schema=None) as batch_op:
        batch_op.alter_column('message_id', existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column('question_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_chat_reports_question_id'), ['question_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_chat_reports_question_id_qa_questions'), 'qa_questions',
                                    ['question_id'], ['id'], ondelete='CASCADE')
        batch_op.create_unique_constraint('uq_chat_reports_question_reporter', ['question_id', 'reporter_id'])
        batch_op.create_check_constraint(batch_op.f('ck_chat_reports_one_target'),
                                         '(message_id IS NULL) <> (question_id IS NULL)')


def downgrade():
    # Question reports have no place in the older schema (message_id becomes required again).
    op.execute("DELETE FROM chat_reports WHERE question_id IS NOT NULL")
    with op.batch_alter_table('chat_reports', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_chat_reports_one_target'), type_='check')
        batch_op.drop_constraint('uq_chat_reports_question_reporter', type_='unique')
        batch_op.drop_constraint(batch_op.f('fk_chat_reports_question_id_qa_questions'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_chat_reports_question_id'))
        batch_op.drop_column('question_id')
        batch_op.alter_column('message_id', existing_type=sa.Integer(), nullable=False)

    with op.batch_alter_table('qa_questions', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_qa_questions_hidden_by_id_users'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_qa_questions_hidden_by_id'))
        batch_op.drop_column('hidden_by_id')
        batch_op.drop_column('hidden_at')
