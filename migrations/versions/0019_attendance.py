"""attendance: presence minutes, reaction and download counters, certificates; event settings for them

Revision ID: 0019_attendance
Revises: 0018_jobs
"""
import sqlalchemy as sa
from alembic import op

revision = "0019_attendance"
down_revision = "0018_jobs"
branch_labels = None
depends_on = None

MINUTE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade():
    op.create_table(
        "attendance_minutes",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("room", sa.String(length=80), nullable=False),
        sa.Column("minute", MINUTE, nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_attendance_minutes_event_id_events"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_attendance_minutes_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "room", "minute", name=op.f("pk_attendance_minutes")),
    )
    op.create_index("ix_attendance_minutes_event_room_minute", "attendance_minutes",
                    ["event_id", "room", "minute"], unique=False)
    op.create_table(
        "attendance_reactions",
        sa.Column("room", sa.String(length=80), nullable=False),
        sa.Column("minute", MINUTE, nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_attendance_reactions_event_id_events"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("room", "minute", name=op.f("pk_attendance_reactions")),
    )
    op.create_index(op.f("ix_attendance_reactions_event_id"), "attendance_reactions", ["event_id"], unique=False)
    op.create_table(
        "attendance_downloads",
        sa.Column("presentation_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_attendance_downloads_event_id_events"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["presentation_id"], ["presentations.id"],
                                name=op.f("fk_attendance_downloads_presentation_id_presentations"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["session_id"], ["conference_sessions.id"],
                                name=op.f("fk_attendance_downloads_session_id_conference_sessions"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("presentation_id", "day", name=op.f("pk_attendance_downloads")),
    )
    op.create_index(op.f("ix_attendance_downloads_event_id"), "attendance_downloads", ["event_id"], unique=False)
    op.create_index(op.f("ix_attendance_downloads_session_id"), "attendance_downloads", ["session_id"], unique=False)
    op.create_table(
        "attendance_certificates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("sessions_json", sa.Text(), nullable=False),
        sa.Column("total_minutes", sa.Integer(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"],
                                name=op.f("fk_attendance_certificates_event_id_events"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_attendance_certificates_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attendance_certificates")),
        sa.UniqueConstraint("code", name=op.f("uq_attendance_certificates_code")),
        sa.UniqueConstraint("event_id", "user_id", name=op.f("uq_attendance_certificates_event_id")),
    )
    op.create_index(op.f("ix_attendance_certificates_event_id"), "attendance_certificates", ["event_id"])
    op.create_index(op.f("ix_attendance_certificates_user_id"), "attendance_certificates", ["user_id"])
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attendance_retention_days", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("certificate_min_minutes", sa.Integer(), nullable=False, server_default="30"))


def downgrade():
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("certificate_min_minutes")
        batch_op.drop_column("attendance_retention_days")
    op.drop_table("attendance_certificates")
    op.drop_table("attendance_downloads")
    op.drop_table("attendance_reactions")
    op.drop_table("attendance_minutes")
