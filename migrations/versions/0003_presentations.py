"""speaker invitations, mail outbox, presentations

Revision ID: 0003_presentations
Revises: 0002_agenda
"""
import sqlalchemy as sa
from alembic import op

revision = "0003_presentations"
down_revision = "0002_agenda"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "mail_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.Column("recipient", sa.String(length=254), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_mail_outbox_event_id_events"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_outbox")),
    )
    with op.batch_alter_table("mail_outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mail_outbox_event_id"), ["event_id"], unique=False)

    op.create_table(
        "speaker_invitations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("speaker_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("nonce", sa.String(length=32), nullable=False),
        sa.Column("invited_by_id", sa.Integer(), nullable=True),
        sa.Column("accepted_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["accepted_by_id"], ["users.id"],
                                name=op.f("fk_speaker_invitations_accepted_by_id_users"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_speaker_invitations_event_id_events"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["invited_by_id"], ["users.id"],
                                name=op.f("fk_speaker_invitations_invited_by_id_users"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["session_id"], ["conference_sessions.id"],
                                name=op.f("fk_speaker_invitations_session_id_conference_sessions"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["speaker_id"], ["speaker_profiles.id"],
                                name=op.f("fk_speaker_invitations_speaker_id_speaker_profiles"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_speaker_invitations")),
    )
    with op.batch_alter_table("speaker_invitations", schema=None) as batch_op:
        for column in ("accepted_by_id", "event_id", "invited_by_id", "session_id", "speaker_id"):
            batch_op.create_index(batch_op.f(f"ix_speaker_invitations_{column}"), [column], unique=False)

    op.create_table(
        "presentations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("original_filename", sa.String(length=200), nullable=False),
        sa.Column("stored_filename", sa.String(length=80), nullable=False),
        sa.Column("file_type", sa.String(length=8), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("visibility_mode", sa.String(length=10), nullable=False),
        sa.Column("thumbnail_state", sa.String(length=8), nullable=False),
        sa.Column("thumbnail_filename", sa.String(length=80), nullable=True),
        sa.Column("uploaded_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_presentations_event_id_events"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["session_id"], ["conference_sessions.id"],
                                name=op.f("fk_presentations_session_id_conference_sessions"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["uploaded_by_id"], ["users.id"], name=op.f("fk_presentations_uploaded_by_id_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_presentations")),
        sa.UniqueConstraint("session_id", "version", name="uq_presentations_session_version"),
        sa.UniqueConstraint("stored_filename", name=op.f("uq_presentations_stored_filename")),
    )
    with op.batch_alter_table("presentations", schema=None) as batch_op:
        for column in ("event_id", "session_id", "uploaded_by_id"):
            batch_op.create_index(batch_op.f(f"ix_presentations_{column}"), [column], unique=False)


def downgrade():
    with op.batch_alter_table("presentations", schema=None) as batch_op:
        for column in ("event_id", "session_id", "uploaded_by_id"):
            batch_op.drop_index(batch_op.f(f"ix_presentations_{column}"))
    op.drop_table("presentations")
    with op.batch_alter_table("speaker_invitations", schema=None) as batch_op:
        for column in ("accepted_by_id", "event_id", "invited_by_id", "session_id", "speaker_id"):
            batch_op.drop_index(batch_op.f(f"ix_speaker_invitations_{column}"))
    op.drop_table("speaker_invitations")
    with op.batch_alter_table("mail_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mail_outbox_event_id"))
    op.drop_table("mail_outbox")
