"""Many complaints at once, straight into the store (exports and paging at scale; no worker in the way)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, insert

from channels.base import InboxItem
from gateway.inbox import insert_inbox_row
from sinks.store.db import Store
from sinks.store.models import Complaint

_COMPLAINTS: Table = Complaint.__table__  # type: ignore[attr-defined]
START = datetime(2026, 1, 1, tzinfo=UTC)


def add_complaints(store: Store, count: int, first: int = 0, chunk: int = 5000) -> None:
    """``count`` complaints numbered from ``first``, one a second from ``START``, all from one inbox row."""
    with store.write() as session:
        item = InboxItem(channel="manual", provider="callcenter", external_id="bulk", raw=b"{}")
        inbox_id = insert_inbox_row(session, item, START).inbox_id
    for offset in range(0, count, chunk):
        rows = [_row(inbox_id, number) for number in range(first + offset, first + min(offset + chunk, count))]
        with store.write() as session:
            session.execute(insert(_COMPLAINTS), rows)


def _row(inbox_id: int, number: int) -> dict[str, Any]:
    at = START + timedelta(seconds=number)
    return {
        "tracking_id": f"LPR-B{number:08d}",
        "inbox_id": inbox_id,
        "part": number,
        "kind": "complaint",
        "channel": "manual",
        "provider": "callcenter",
        "source": "phone",
        "external_id": f"bulk-{number}",
        "received_at": at,
        "stored_at": at,
        "anonymity": "public",
        "reporter_name": f"Warga {number}",
        "body": f"Lampu jalan mati di gang {number}",
        "category": "pju",
        "attachments": [],
        "status": "received",
    }
