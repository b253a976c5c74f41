"""Normalizer fields: priority, auto, related, region level and path (issue 10).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from collections.abc import Sequence

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nothing yet: this revision keeps its place in the chain so the work that fills it can land in any order.
    pass


def downgrade() -> None:
    pass
