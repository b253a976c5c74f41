"""Complaints written straight into the store, in any lifecycle state, for lifecycle tests."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlmodel import col

from sinks.store import queries
from sinks.store.db import Store
from sinks.store.models import DONE, Complaint, ComplaintEvent, InboxMessage, OutboxMessage, utcnow


def add_complaint(store: Store, status: str = "received", received_at: datetime | None = None, **columns: Any) -> str:
    """A complaint (and the inbox row it came from) with these column values; returns its tracking id."""
    at = received_at or utcnow()
    with store.write() as session:
        row = InboxMessage(
            channel="manual",
            provider="callcenter",
            external_id=f"test-{os.urandom(6).hex()}",
            received_at=at,
            raw=b"{}",
            next_attempt_at=at,
            status=DONE,
        )
        session.add(row)
        session.flush()
        assert row.id is not None
        fields: dict[str, Any] = {
            "tracking_id": "",
            "inbox_id": row.id,
            "part": 0,
            "kind": "complaint",
            "channel": "manual",
            "provider": "callcenter",
            "external_id": row.external_id,
            "received_at": at,
            "stored_at": at,
            "anonymity": "public",
            "body": "Jalan berlubang di depan pasar",
            "category": "jalan",
            "status": status,
            "attachments": [],
            **columns,
        }
        queries.insert_complaint(session, fields)
        return str(fields["tracking_id"])


def complaint(store: Store, tracking_id: str) -> Complaint:
    with store.read() as session:
        found = queries.complaint_by_tracking_id(session, tracking_id)
        assert found is not None
        return found


def events(store: Store, tracking_id: str) -> list[ComplaintEvent]:
    with store.read() as session:
        return list(
            session.execute(
                select(ComplaintEvent)
                .where(col(ComplaintEvent.tracking_id) == tracking_id)
                .order_by(col(ComplaintEvent.at))
            ).scalars()
        )


def outbox_for(store: Store, tracking_id: str, kind: str | None = None) -> list[OutboxMessage]:
    query = select(OutboxMessage).where(col(OutboxMessage.tracking_id) == tracking_id).order_by(col(OutboxMessage.id))
    if kind:
        query = query.where(col(OutboxMessage.kind) == kind)
    with store.read() as session:
        return list(session.execute(query).scalars())


def add_ack(store: Store, tracking_id: str, target: str, channel: str, to: str, extra: dict[str, Any]) -> None:
    """The acknowledgement the worker would have queued: the citizen's channel and address for later messages."""
    payload = {
        "channel": channel,
        "provider": target,
        "to": to,
        "text": "Laporan Anda diterima.",
        "idempotency_key": f"reply:ack:{tracking_id}",
        "tracking_id": tracking_id,
        "in_reply_to": None,
        "extra": extra,
    }
    with store.write() as session:
        session.execute(
            insert(OutboxMessage), [queries.outbox_values("reply", target, payload["idempotency_key"], payload)]
        )
