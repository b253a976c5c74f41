"""Complaint lifecycle: events, agency, due dates, forwarder state (issue 12).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from collections.abc import Sequence

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nothing yet: this revision keeps its place in the chain so the work that fills it can land in any order.
    pass


def downgrade() -> None:
    pass
