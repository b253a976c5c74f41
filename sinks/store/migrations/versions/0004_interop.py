"""Attachment fetch jobs and other interop state (issue 11, part 1).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from collections.abc import Sequence

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nothing yet: this revision keeps its place in the chain so the work that fills it can land in any order.
    pass


def downgrade() -> None:
    pass
