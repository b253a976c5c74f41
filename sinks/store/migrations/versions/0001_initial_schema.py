"""Initial schema: inbox, complaint, outbox, api_token, channel_state.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from sinks.store.models import UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "api_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("api_token", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_token_name"), ["name"], unique=False)

    op.create_table(
        "channel_state",
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("value", sa.JSON(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "inbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("external_id", sa.String(512), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.Column("claim_token", sa.String(64), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("error_type", sa.String(128), nullable=True),
        sa.Column("processed_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel", "provider", "external_id", name="uq_inbox_provider_message"),
    )
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.create_index("ix_inbox_due", ["status", "next_attempt_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_inbox_received_at"), ["received_at"], unique=False)

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("tracking_id", sa.String(32), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.Column("claim_token", sa.String(64), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("error_type", sa.String(128), nullable=True),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("provider_message_id", sa.String(255), nullable=True),
        sa.Column("delivery_status", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_due", ["status", "next_attempt_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_provider_message_id"), ["provider_message_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_tracking_id"), ["tracking_id"], unique=False)

    op.create_table(
        "complaint",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tracking_id", sa.String(32), nullable=False),
        sa.Column("inbox_id", sa.Integer(), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("source", sa.String(32), nullable=True),
        sa.Column("external_id", sa.String(512), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("stored_at", UTCDateTime(), nullable=False),
        sa.Column("reporter_name", sa.Text(), nullable=True),
        sa.Column("reporter_phone", sa.String(32), nullable=True),
        sa.Column("reporter_email", sa.String(320), nullable=True),
        sa.Column("reporter_telegram_id", sa.String(64), nullable=True),
        sa.Column("anonymity", sa.String(16), nullable=False),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("category", sa.String(64), nullable=True),
        sa.Column("location_text", sa.Text(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("region_code", sa.String(16), nullable=True),
        sa.Column("region_name", sa.Text(), nullable=True),
        sa.Column("attachments", sa.JSON(), nullable=False),
        sa.Column("parent_tracking_id", sa.String(32), nullable=True),
        sa.Column("entered_by", sa.String(200), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("reply_address", sa.String(320), nullable=True),
        sa.ForeignKeyConstraint(
            ["inbox_id"],
            ["inbox.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("inbox_id", "part", name="uq_complaint_inbox_part"),
        sa.UniqueConstraint("tracking_id"),
    )
    with op.batch_alter_table("complaint", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_complaint_channel"), ["channel"], unique=False)
        batch_op.create_index(batch_op.f("ix_complaint_inbox_id"), ["inbox_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_complaint_parent_tracking_id"), ["parent_tracking_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_complaint_received_at"), ["received_at"], unique=False)
        batch_op.create_index(
            "ix_complaint_reply_address", ["channel", "provider", "reply_address", "received_at"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("complaint", schema=None) as batch_op:
        batch_op.drop_index("ix_complaint_reply_address")
        batch_op.drop_index(batch_op.f("ix_complaint_received_at"))
        batch_op.drop_index(batch_op.f("ix_complaint_parent_tracking_id"))
        batch_op.drop_index(batch_op.f("ix_complaint_inbox_id"))
        batch_op.drop_index(batch_op.f("ix_complaint_channel"))

    op.drop_table("complaint")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_tracking_id"))
        batch_op.drop_index(batch_op.f("ix_outbox_provider_message_id"))
        batch_op.drop_index("ix_outbox_due")

    op.drop_table("outbox")
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inbox_received_at"))
        batch_op.drop_index("ix_inbox_due")

    op.drop_table("inbox")
    op.drop_table("channel_state")
    with op.batch_alter_table("api_token", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_token_name"))

    op.drop_table("api_token")
