"""live layer: chat, Q&A, moderation, announcements

Revision ID: 0004_live
Revises: 0003_presentations
"""
import sqlalchemy as sa
from alembic import op

revision = "0004_live"
down_revision = "0003_presentations"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('chat_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('room', sa.String(length=80), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('author_name', sa.String(length=120), nullable=False),
    sa.Column('author_role', sa.String(length=16), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('deleted_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_chat_messages_author_id_users'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['deleted_by_id'], ['users.id'], name=op.f('fk_chat_messages_deleted_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_chat_messages_event_id_events'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_chat_messages')),
    sa.UniqueConstraint('author_id', 'room', 'client_id', name='uq_chat_messages_author_room_client')
    )
    with op.batch_alter_table('chat_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_chat_messages_author_id'), ['author_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_chat_messages_deleted_by_id'), ['deleted_by_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_chat_messages_event_id'), ['event_id'], unique=False)
        batch_op.create_index('ix_chat_messages_room_id', ['room', 'id'], unique=False)

    op.create_table('chat_reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('reporter_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_chat_reports_event_id_events'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['message_id'], ['chat_messages.id'], name=op.f('fk_chat_reports_message_id_chat_messages'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['reporter_id'], ['users.id'], name=op.f('fk_chat_reports_reporter_id_users'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['resolved_by_id'], ['users.id'], name=op.f('fk_chat_reports_resolved_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_chat_reports')),
    sa.UniqueConstraint('message_id', 'reporter_id', name='uq_chat_reports_message_reporter')
    )
    with op.batch_alter_table('chat_reports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_chat_reports_event_id'), ['event_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_chat_reports_message_id'), ['message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_chat_reports_reporter_id'), ['reporter_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_chat_reports_resolved_by_id'), ['resolved_by_id'], unique=False)

    op.create_table('live_sanctions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_live_sanctions_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_live_sanctions_event_id_events'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_live_sanctions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_live_sanctions')),
    sa.UniqueConstraint('event_id', 'user_id', 'kind', name='uq_live_sanctions_event_user_kind')
    )
    with op.batch_alter_table('live_sanctions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_live_sanctions_created_by_id'), ['created_by_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_live_sanctions_event_id'), ['event_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_live_sanctions_user_id'), ['user_id'], unique=False)

    op.create_table('live_room_settings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('room', sa.String(length=80), nullable=False),
    sa.Column('slow_mode_seconds', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_live_room_settings_event_id_events'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_live_room_settings')),
    sa.UniqueConstraint('event_id', 'room', name='uq_live_room_settings_event_room')
    )
    with op.batch_alter_table('live_room_settings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_live_room_settings_event_id'), ['event_id'], unique=False)

    op.create_table('qa_questions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('author_name', sa.String(length=120), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('vote_count', sa.Integer(), nullable=False),
    sa.Column('is_answered', sa.Boolean(), nullable=False),
    sa.Column('answer', sa.Text(), nullable=True),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('answered_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['answered_by_id'], ['users.id'], name=op.f('fk_qa_questions_answered_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_qa_questions_author_id_users'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_qa_questions_event_id_events'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['session_id'], ['conference_sessions.id'], name=op.f('fk_qa_questions_session_id_conference_sessions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_qa_questions')),
    sa.UniqueConstraint('author_id', 'session_id', 'client_id', name='uq_qa_questions_author_session_client')
    )
    with op.batch_alter_table('qa_questions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_qa_questions_answered_by_id'), ['answered_by_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_qa_questions_author_id'), ['author_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_qa_questions_event_id'), ['event_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_qa_questions_session_id'), ['session_id'], unique=False)

    op.create_table('qa_votes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('question_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['question_id'], ['qa_questions.id'], name=op.f('fk_qa_votes_question_id_qa_questions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_qa_votes_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_qa_votes')),
    sa.UniqueConstraint('question_id', 'user_id', name='uq_qa_votes_question_user')
    )
    with op.batch_alter_table('qa_votes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_qa_votes_question_id'), ['question_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_qa_votes_user_id'), ['user_id'], unique=False)

    op.create_table('live_announcements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('text', sa.String(length=500), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_live_announcements_author_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_live_announcements_event_id_events'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_live_announcements'))
    )
    with op.batch_alter_table('live_announcements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_live_announcements_author_id'), ['author_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_live_announcements_event_id'), ['event_id'], unique=False)


def downgrade():
    with op.batch_alter_table('live_announcements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_live_announcements_event_id'))
        batch_op.drop_index(batch_op.f('ix_live_announcements_author_id'))

    op.drop_table('live_announcements')
    with op.batch_alter_table('qa_votes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_qa_votes_user_id'))
        batch_op.drop_index(batch_op.f('ix_qa_votes_question_id'))

    op.drop_table('qa_votes')
    with op.batch_alter_table('qa_questions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_qa_questions_session_id'))
        batch_op.drop_index(batch_op.f('ix_qa_questions_event_id'))
        batch_op.drop_index(batch_op.f('ix_qa_questions_author_id'))
        batch_op.drop_index(batch_op.f('ix_qa_questions_answered_by_id'))

    op.drop_table('qa_questions')
    with op.batch_alter_table('live_room_settings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_live_room_settings_event_id'))

    op.drop_table('live_room_settings')
    with op.batch_alter_table('live_sanctions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_live_sanctions_user_id'))
        batch_op.drop_index(batch_op.f('ix_live_sanctions_event_id'))
        batch_op.drop_index(batch_op.f('ix_live_sanctions_created_by_id'))

    op.drop_table('live_sanctions')
    with op.batch_alter_table('chat_reports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_chat_reports_resolved_by_id'))
        batch_op.drop_index(batch_op.f('ix_chat_reports_reporter_id'))
        batch_op.drop_index(batch_op.f('ix_chat_reports_message_id'))
        batch_op.drop_index(batch_op.f('ix_chat_reports_event_id'))

    op.drop_table('chat_reports')
    with op.batch_alter_table('chat_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_chat_messages_room_id')
        batch_op.drop_index(batch_op.f('ix_chat_messages_event_id'))
        batch_op.drop_index(batch_op.f('ix_chat_messages_deleted_by_id'))
        batch_op.drop_index(batch_op.f('ix_chat_messages_author_id'))

    op.drop_table('chat_messages')
