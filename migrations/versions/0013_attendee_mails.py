"""mail_preferences, sent_reminders, slides_notices, announcement_mails: the mails attendees get

Revision ID: 0013_attendee_mails
Revises: 0012_event_branding
"""
import sqlalchemy as sa
from alembic import op

revision = "0013_attendee_mails"
down_revision = "0012_event_branding"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "mail_preferences",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("reminder_minutes", sa.Integer(), nullable=True),
        sa.Column("wants_slides_notice", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_mail_preferences_event_id_events"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_mail_preferences_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_preferences")),
        sa.UniqueConstraint("user_id", "event_id", name=op.f("uq_mail_preferences_user_id")),
    )
    op.create_index(op.f("ix_mail_preferences_event_id"), "mail_preferences", ["event_id"])
    op.create_index(op.f("ix_mail_preferences_user_id"), "mail_preferences", ["user_id"])
    op.create_table(
        "sent_reminders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["conference_sessions.id"],
                                name=op.f("fk_sent_reminders_session_id_conference_sessions"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_sent_reminders_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sent_reminders")),
        sa.UniqueConstraint("user_id", "session_id", name=op.f("uq_sent_reminders_user_id")),
    )
    op.create_index(op.f("ix_sent_reminders_session_id"), "sent_reminders", ["session_id"])
    op.create_index(op.f("ix_sent_reminders_user_id"), "sent_reminders", ["user_id"])
    op.create_table(
        "slides_notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["conference_sessions.id"],
                                name=op.f("fk_slides_notices_session_id_conference_sessions"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slides_notices")),
        sa.UniqueConstraint("session_id", name=op.f("uq_slides_notices_session_id")),
    )
    op.create_table(
        "announcement_mails",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("sent_by_id", sa.Integer(), nullable=True),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_announcement_mails_event_id_events"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["sent_by_id"], ["users.id"], name=op.f("fk_announcement_mails_sent_by_id_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_announcement_mails")),
    )
    op.create_index(op.f("ix_announcement_mails_created_at"), "announcement_mails", ["created_at"])
    op.create_index(op.f("ix_announcement_mails_event_id"), "announcement_mails", ["event_id"])
    op.create_index(op.f("ix_announcement_mails_sent_by_id"), "announcement_mails", ["sent_by_id"])


def downgrade():
    op.drop_table("announcement_mails")
    op.drop_table("slides_notices")
    op.drop_table("sent_reminders")
    op.drop_table("mail_preferences")
