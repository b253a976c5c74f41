"""Retention and fault handling (issue 11, part 2).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nothing yet: this revision keeps its place in the chain so the work that fills it can land in any order.
    pass


def downgrade() -> None:
    pass
