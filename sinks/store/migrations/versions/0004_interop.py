"""Attachment fetch jobs (issue 11, part 1): media is fetched after the complaint is stored.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from sinks.store.models import UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "media_fetch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("tracking_id", sa.String(32), nullable=False),
        sa.Column("inbox_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("descriptor", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.Column("claim_token", sa.String(64), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("error_type", sa.String(128), nullable=True),
        sa.Column("fetched_at", UTCDateTime(), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.ForeignKeyConstraint(["inbox_id"], ["inbox.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
    )
    with op.batch_alter_table("media_fetch", schema=None) as batch_op:
        batch_op.create_index("ix_media_fetch_due", ["status", "next_attempt_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_media_fetch_tracking_id"), ["tracking_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("media_fetch", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_media_fetch_tracking_id"))
        batch_op.drop_index("ix_media_fetch_due")
    op.drop_table("media_fetch")
