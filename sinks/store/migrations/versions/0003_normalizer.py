"""Normalizer fields: priority, auto, related, region level and path (issue 10).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Server defaults fill the rows stored before this revision: normal priority, nothing related.
    with op.batch_alter_table("complaint") as batch:
        batch.add_column(sa.Column("region_level", sa.String(16), nullable=True))
        batch.add_column(sa.Column("region_path", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("priority", sa.String(16), nullable=False, server_default="normal"))
        batch.add_column(sa.Column("auto", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("related", sa.JSON(), nullable=False, server_default="[]"))
    op.create_index("ix_complaint_related", "complaint", ["category", "region_code", "received_at"])


def downgrade() -> None:
    op.drop_index("ix_complaint_related", table_name="complaint")
    with op.batch_alter_table("complaint") as batch:
        batch.drop_column("related")
        batch.drop_column("auto")
        batch.drop_column("priority")
        batch.drop_column("region_path")
        batch.drop_column("region_level")
