"""agenda releases, personal agenda, calendar feeds

Revision ID: 0002_agenda
Revises: 0001_initial
"""
import sqlalchemy as sa
from alembic import op

revision = "0002_agenda"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "agenda_releases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("changes", sa.Text(), nullable=False),
        sa.Column("snapshot", sa.Text(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_agenda_releases_event_id_events"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["published_by_id"], ["users.id"],
                                name=op.f("fk_agenda_releases_published_by_id_users"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agenda_releases")),
        sa.UniqueConstraint("event_id", "name", name="uq_agenda_releases_event_name"),
        sa.UniqueConstraint("event_id", "sequence", name="uq_agenda_releases_event_sequence"),
    )
    with op.batch_alter_table("agenda_releases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_agenda_releases_event_id"), ["event_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_agenda_releases_published_by_id"), ["published_by_id"], unique=False)

    op.create_table(
        "starred_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["conference_sessions.id"],
                                name=op.f("fk_starred_sessions_session_id_conference_sessions"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_starred_sessions_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_starred_sessions")),
        sa.UniqueConstraint("user_id", "session_id", name="uq_starred_sessions_user_session"),
    )
    with op.batch_alter_table("starred_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_starred_sessions_session_id"), ["session_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_starred_sessions_user_id"), ["user_id"], unique=False)

    op.create_table(
        "calendar_feeds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_calendar_feeds_event_id_events"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_calendar_feeds_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_feeds")),
    )
    with op.batch_alter_table("calendar_feeds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_calendar_feeds_event_id"), ["event_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_calendar_feeds_user_id"), ["user_id"], unique=False)


def downgrade():
    with op.batch_alter_table("calendar_feeds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_calendar_feeds_user_id"))
        batch_op.drop_index(batch_op.f("ix_calendar_feeds_event_id"))
    op.drop_table("calendar_feeds")

    with op.batch_alter_table("starred_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_starred_sessions_user_id"))
        batch_op.drop_index(batch_op.f("ix_starred_sessions_session_id"))
    op.drop_table("starred_sessions")

    with op.batch_alter_table("agenda_releases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agenda_releases_published_by_id"))
        batch_op.drop_index(batch_op.f("ix_agenda_releases_event_id"))
    op.drop_table("agenda_releases")
