"""New front doors: web form, Line, Meta, X (issue 15).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from collections.abc import Sequence

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The front doors need no new table: web-form submissions are inbox rows like any channel's, the
    # form-token secret is a channel_state key, and the rate limiter counts in memory. The revision keeps
    # its place in the chain.
    pass


def downgrade() -> None:
    pass
