"""mail queue: delivery state on the outbox rows, unsubscribed addresses

Revision ID: 0009_mail_queue
Revises: 0008_account_verification
"""
import sqlalchemy as sa
from alembic import op

revision = "0009_mail_queue"
down_revision = "0008_account_verification"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("mail_outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recipient_name", sa.String(length=120), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("locale", sa.String(length=5), nullable=False, server_default="de"))
        batch_op.add_column(sa.Column("message_id", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("unsubscribe_url", sa.String(length=1000), nullable=True))
        batch_op.add_column(sa.Column("status", sa.String(length=10), nullable=False, server_default="queued"))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("last_error", sa.String(length=500), nullable=True))
    # Rows from before the queue were kept for reading; they are queued now, and a sender fails those older
    # than MAIL_GIVE_UP_AFTER instead of sending them late.
    op.execute("UPDATE mail_outbox SET message_id = '<outbox-' || CAST(id AS VARCHAR(20)) || '@conference.invalid>', "
               "next_attempt_at = created_at")
    with op.batch_alter_table("mail_outbox", schema=None) as batch_op:
        batch_op.alter_column("message_id", existing_type=sa.String(length=255), nullable=False)
        batch_op.alter_column("next_attempt_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.create_index("ix_mail_outbox_status_next_attempt_at", ["status", "next_attempt_at"], unique=False)

    op.create_table(
        "mail_opt_outs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_mail_opt_outs_event_id_events"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_opt_outs")),
        sa.UniqueConstraint("email", "event_id", name=op.f("uq_mail_opt_outs_email")),
    )
    with op.batch_alter_table("mail_opt_outs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mail_opt_outs_event_id"), ["event_id"], unique=False)


def downgrade():
    with op.batch_alter_table("mail_opt_outs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mail_opt_outs_event_id"))
    op.drop_table("mail_opt_outs")
    with op.batch_alter_table("mail_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_mail_outbox_status_next_attempt_at")
        for column in ("last_error", "sent_at", "claimed_at", "next_attempt_at", "attempts", "status",
                       "unsubscribe_url", "message_id", "locale", "recipient_name"):
            batch_op.drop_column(column)
