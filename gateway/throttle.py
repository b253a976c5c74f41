"""Counters in the store that slow a key down: sign-in misses, acknowledgement mails per recipient.

Every count is taken on a row locked for the transaction (``SELECT … FOR UPDATE`` on PostgreSQL;
SQLite's write transactions are serial already), so concurrent requests on any number of gateway
processes never lose one: there is no read-modify-write outside a lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from sinks.store.models import Throttle


@dataclass(frozen=True)
class Delays:
    """After ``free`` misses each further one makes the key wait ``first``, doubling up to ``longest``.

    A key that has been quiet for ``window`` starts again from nothing.
    """

    free: int
    first: timedelta
    longest: timedelta
    window: timedelta

    def after(self, misses: int) -> timedelta | None:
        if misses < self.free:
            return None
        delay: timedelta = self.first * 2 ** min(misses - self.free, 30)
        return min(delay, self.longest)


def locked(session: Session, key: str, now: datetime, window: timedelta) -> Throttle:
    """The key's row, created if missing and locked until the transaction ends; reset once its window is over."""
    values = {"key": key, "count": 0, "window_start": now, "updated_at": now}
    dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
    session.execute(dialect.insert(Throttle).values(values).on_conflict_do_nothing(index_elements=["key"]))
    row: Throttle = session.execute(
        select(Throttle).where(col(Throttle.key) == key).with_for_update().execution_options(populate_existing=True)
    ).scalar_one()
    if now - row.updated_at >= window:
        row.count, row.window_start, row.retry_at = 0, now, None
    return row


def wait(rows: list[Throttle], now: datetime) -> timedelta | None:
    """How long the slowest of ``rows`` still has to wait (None: go ahead)."""
    waits = [row.retry_at - now for row in rows if row.retry_at is not None and row.retry_at > now]
    return max(waits) if waits else None


def miss(row: Throttle, delays: Delays, now: datetime) -> None:
    row.count += 1
    delay = delays.after(row.count)
    row.retry_at = now + delay if delay else None
    row.updated_at = now


def clear(row: Throttle, now: datetime) -> None:
    row.count, row.window_start, row.retry_at, row.updated_at = 0, now, None, now


def take(session: Session, key: str, now: datetime, limit: int, window: timedelta) -> bool:
    """One of ``limit`` uses a ``window`` for ``key``; False when they are used up (nothing is counted then)."""
    row = locked(session, key, now, window)
    if now - row.window_start >= window:
        row.count, row.window_start = 0, now
    if row.count >= limit:
        return False
    row.count += 1
    row.updated_at = now
    return True


def prune(session: Session, now: datetime, older_than: timedelta = timedelta(days=1)) -> None:
    """Forget keys nobody used for a day (the sign-in form is open to anyone, so names are unbounded)."""
    session.execute(delete(Throttle).where(col(Throttle.updated_at) < now - older_than))
