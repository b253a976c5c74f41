"""Retention and fault handling (issue 11, part 2): what is kept of an inbox row once its raw payload is purged.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from sinks.store.models import UTCDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Provenance of a purged payload: its digest and size, and when it went (see gateway/retention.py).
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("raw_sha256", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("raw_size", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("purged_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.drop_column("purged_at")
        batch_op.drop_column("raw_size")
        batch_op.drop_column("raw_sha256")
