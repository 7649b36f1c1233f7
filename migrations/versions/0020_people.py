"""people and feedback: registration questions and answers, session feedback, summaries, documentation page

Revision ID: 0020_people
Revises: 0019_attendance
"""
import sqlalchemy as sa
from alembic import op


revision = "0020_people"
down_revision = "0019_attendance"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "registration_settings",
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("asks_organisation", sa.Boolean(), nullable=False),
        sa.Column("asks_sector", sa.Boolean(), nullable=False),
        sa.Column("sectors", sa.Text(), nullable=False),
        sa.Column("asks_listing_consent", sa.Boolean(), nullable=False),
        sa.Column("has_public_list", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_registration_settings_event_id_events"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_registration_settings")),
    )
    op.create_table(
        "registration_answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("organisation", sa.String(length=200), nullable=True),
        sa.Column("sector", sa.String(length=100), nullable=True),
        sa.Column("is_listed", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_registration_answers_event_id_events"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_registration_answers_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registration_answers")),
        sa.UniqueConstraint("event_id", "user_id", name="uq_registration_answers_event_user"),
    )
    op.create_index(op.f("ix_registration_answers_event_id"), "registration_answers", ["event_id"])
    op.create_index(op.f("ix_registration_answers_user_id"), "registration_answers", ["user_id"])
    op.create_table(
        "session_feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("shows_name", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_session_feedback_event_id_events"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["session_id"], ["conference_sessions.id"],
                                name=op.f("fk_session_feedback_session_id_conference_sessions"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_session_feedback_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_feedback")),
        sa.UniqueConstraint("session_id", "user_id", name="uq_session_feedback_session_user"),
    )
    for column in ("event_id", "session_id", "user_id"):
        op.create_index(op.f(f"ix_session_feedback_{column}"), "session_feedback", [column])
    op.create_table(
        "session_summaries",
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_session_summaries_event_id_events"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["session_id"], ["conference_sessions.id"],
                                name=op.f("fk_session_summaries_session_id_conference_sessions"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_session_summaries")),
    )
    op.create_index(op.f("ix_session_summaries_event_id"), "session_summaries", ["event_id"])
    op.create_table(
        "event_documentation",
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("is_published", sa.Boolean(), nullable=False),
        sa.Column("survey_url", sa.String(length=500), nullable=True),
        sa.Column("shows_registered", sa.Boolean(), nullable=False),
        sa.Column("shows_attended", sa.Boolean(), nullable=False),
        sa.Column("shows_sessions", sa.Boolean(), nullable=False),
        sa.Column("shows_questions", sa.Boolean(), nullable=False),
        sa.Column("shows_slides", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_event_documentation_event_id_events"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_event_documentation")),
    )


def downgrade():
    op.drop_table("event_documentation")
    op.drop_index(op.f("ix_session_summaries_event_id"), table_name="session_summaries")
    op.drop_table("session_summaries")
    for column in ("event_id", "session_id", "user_id"):
        op.drop_index(op.f(f"ix_session_feedback_{column}"), table_name="session_feedback")
    op.drop_table("session_feedback")
    op.drop_index(op.f("ix_registration_answers_user_id"), table_name="registration_answers")
    op.drop_index(op.f("ix_registration_answers_event_id"), table_name="registration_answers")
    op.drop_table("registration_answers")
    op.drop_table("registration_settings")
