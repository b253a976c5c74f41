"""Complaint lifecycle: events, agency, due dates, forwarder state (issue 12).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from sinks.store.models import UTCDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "complaint_event",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("tracking_id", sa.String(32), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("from_status", sa.String(32), nullable=True),
        sa.Column("to_status", sa.String(32), nullable=False),
        sa.Column("actor_kind", sa.String(16), nullable=False),
        sa.Column("actor_name", sa.String(200), nullable=False),
        sa.Column("agency", sa.String(64), nullable=True),
        sa.Column("public_note", sa.Text(), nullable=True),
        sa.Column("internal_note", sa.Text(), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(32), nullable=True),
        sa.Column("duplicate_of", sa.String(32), nullable=True),
        sa.Column("category", sa.String(64), nullable=True),
        sa.Column("region_code", sa.String(16), nullable=True),
        sa.Column("notice", sa.Text(), nullable=True),
        sa.Column("dedupe_key", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedupe_key"),
    )
    with op.batch_alter_table("complaint_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_complaint_event_tracking_id"), ["tracking_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_complaint_event_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_complaint_event_to_status"), ["to_status"], unique=False)
        batch_op.create_index(batch_op.f("ix_complaint_event_agency"), ["agency"], unique=False)
    with op.batch_alter_table("complaint", schema=None) as batch_op:
        batch_op.add_column(sa.Column("agency", sa.String(64), nullable=True))
        batch_op.add_column(sa.Column("due_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("agency_ref", sa.String(255), nullable=True))
        batch_op.add_column(sa.Column("agency_updated_at", UTCDateTime(), nullable=True))
        batch_op.create_index(batch_op.f("ix_complaint_agency"), ["agency"], unique=False)
        batch_op.create_index(batch_op.f("ix_complaint_due_at"), ["due_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_complaint_agency_ref"), ["agency_ref"], unique=False)
    with op.batch_alter_table("api_token", schema=None) as batch_op:
        batch_op.add_column(sa.Column("agency", sa.String(64), nullable=True))
    with op.batch_alter_table("staff_user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("agency", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("staff_user", schema=None) as batch_op:
        batch_op.drop_column("agency")
    with op.batch_alter_table("api_token", schema=None) as batch_op:
        batch_op.drop_column("agency")
    with op.batch_alter_table("complaint", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_complaint_agency_ref"))
        batch_op.drop_index(batch_op.f("ix_complaint_due_at"))
        batch_op.drop_index(batch_op.f("ix_complaint_agency"))
        batch_op.drop_column("agency_updated_at")
        batch_op.drop_column("agency_ref")
        batch_op.drop_column("due_at")
        batch_op.drop_column("agency")
    op.drop_table("complaint_event")
