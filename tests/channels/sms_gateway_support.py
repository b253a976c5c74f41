"""Looking into the real gateway's store from the Twilio, Kannel and Jasmin end-to-end tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlmodel import col

from sinks.store import queries
from sinks.store.db import Store
from sinks.store.models import Complaint, InboxMessage, OutboxMessage

T = TypeVar("T")


def wait_until(probe: Callable[[], T], what: str, timeout: float = 30.0) -> T:
    """Poll ``probe`` until it returns something truthy (the worker runs in its own thread)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def complaints(store: Store) -> list[dict[str, Any]]:
    with store.read() as session:
        rows = session.execute(select(Complaint).order_by(col(Complaint.id))).scalars()
        return [queries.complaint_record(row) for row in rows]


def outbox(store: Store, kind: str = "reply") -> list[dict[str, Any]]:
    with store.read() as session:
        rows = session.execute(
            select(OutboxMessage).where(col(OutboxMessage.kind) == kind).order_by(col(OutboxMessage.id))
        ).scalars()
        return [row.model_dump() for row in rows]


def inbox(store: Store) -> list[dict[str, Any]]:
    with store.read() as session:
        rows = session.execute(select(InboxMessage).order_by(col(InboxMessage.id))).scalars()
        return [row.model_dump() for row in rows]


def inbox_count(store: Store) -> int:
    with store.read() as session:
        return int(session.execute(select(func.count()).select_from(InboxMessage)).scalar_one())
