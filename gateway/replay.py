"""The dead-letter list and replay, shared by the API and the CLI.

A failed row is set back to ``pending`` and the worker takes it like any
other. Because a complaint is unique per (inbox row, part), a replay of a row
that already made its complaint makes no second one.
"""

from __future__ import annotations

import base64
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select, update

from gateway.config import Config
from gateway.registry import by_provider
from normalizer import NeedsHelp, NewComplaint, StatusQuery, normalize
from normalizer.errors import GatewayError
from sinks.store import queries
from sinks.store.db import Store
from sinks.store.models import FAILED, PENDING, InboxMessage, MediaFetch, OutboxMessage, utcnow

# media: attachment downloads that gave up (the complaint itself is stored).
TABLES: dict[str, Any] = {"inbox": InboxMessage, "outbox": OutboxMessage, "media": MediaFetch}


@dataclass(frozen=True)
class FailedRef:
    table: str
    id: int

    def __str__(self) -> str:
        return f"{self.table}-{self.id}"


def parse_ref(text: str) -> FailedRef:
    """``inbox-12``, ``outbox-5``, ``media-3``, or a bare number for an inbox row."""
    table, _, number = text.rpartition("-")
    table = table or "inbox"
    if table not in TABLES or not (number.isascii() and number.isdigit()) or int(number) > queries.MAX_ID:
        raise ValueError(f"{text!r} is not a failed-message id (use inbox-<n>, outbox-<n> or media-<n>)")
    return FailedRef(table, int(number))


def _summary(table: str, row: Any) -> dict[str, Any]:
    common = {
        "id": f"{table}-{row.id}",
        "table": table,
        "status": row.status,
        "attempts": row.attempts,
        "error_type": row.error_type,
        "error": row.last_error,
        "next_attempt_at": queries.iso(row.next_attempt_at),
    }
    if table == "inbox":
        return {
            **common,
            "channel": row.channel,
            "provider": row.provider,
            "external_id": row.external_id,
            "received_at": queries.iso(row.received_at),
        }
    if table == "media":
        return {**common, "channel": row.channel, "tracking_id": row.tracking_id, "position": row.position}
    return {**common, "kind": row.kind, "target": row.target, "tracking_id": row.tracking_id}


def list_failed(store: Store, limit: int = 100) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    with store.read() as session:
        for table, model in TABLES.items():
            rows = session.execute(
                select(model).where(model.status == FAILED).order_by(model.id.desc()).limit(limit)
            ).scalars()
            items.extend(_summary(table, row) for row in rows)
    return items


def _raw_view(raw: bytes) -> dict[str, Any]:
    return {"raw_text": raw.decode("utf-8", errors="replace"), "raw_base64": base64.b64encode(raw).decode()}


def show_failed(store: Store, ref: FailedRef) -> dict[str, Any] | None:
    """A failed row with its raw payload; None for a row that is not (or no longer) failed.

    The dead-letter list is not a window onto every message: a row that was processed is seen
    through its complaint, where anonymity is honoured.
    """
    with store.read() as session:
        row = session.get(TABLES[ref.table], ref.id)
        if row is None or row.status != FAILED:
            return None
        view = _summary(ref.table, row)
        if ref.table == "inbox":
            view.update(_raw_view(row.raw), headers=row.headers, meta=row.meta)
            view["complaints"] = [c.tracking_id for c in queries.complaints_for_inbox(session, ref.id)]
        elif ref.table == "media":
            view["payload"] = row.descriptor  # what the job fetches, shown like an outbox payload
        else:
            view["payload"] = row.payload
        return view


def preview(store: Store, config: Config, ref: FailedRef) -> dict[str, Any]:
    """What a replay would do, without doing it: the records it would make (without tracking ids yet)."""
    with store.read() as session:
        row = session.get(TABLES[ref.table], ref.id)
        if row is None:
            raise LookupError(f"{ref} does not exist")
        if ref.table == "outbox":
            return {"id": str(ref), "would_send": row.payload, "target": row.target}
        if ref.table == "media":
            return {"id": str(ref), "would_fetch": row.descriptor, "for": row.tracking_id}
        existing = {c.part: c.tracking_id for c in queries.complaints_for_inbox(session, ref.id)}
    adapter = by_provider().get(row.provider)
    if adapter is None:
        return {"id": str(ref), "error": f"no channel handles provider {row.provider!r}"}
    try:
        messages = adapter.parse(row.raw, {**row.meta, "external_id": row.external_id, "inbox_id": row.id})
    except GatewayError as exc:
        return {"id": str(ref), "error": f"{type(exc).__name__}: {exc}"}
    results: list[dict[str, Any]] = []
    for message in messages:
        if message.part in existing:
            results.append({"part": message.part, "already_stored": existing[message.part]})
            continue
        outcome = normalize(message, row.received_at, config.keywords)
        if isinstance(outcome, NewComplaint):
            record = asdict(outcome.record)
            record["received_at"] = queries.iso(outcome.record.received_at)
            results.append({"part": message.part, "would_store": record})
        elif isinstance(outcome, StatusQuery):
            results.append({"part": message.part, "would_answer_status_of": outcome.tracking_id})
        elif isinstance(outcome, NeedsHelp):
            results.append({"part": message.part, "would_send_help": outcome.reason})
    return {"id": str(ref), "results": results}


def replay(store: Store, ref: FailedRef) -> bool:
    """Put a failed row back to pending with fresh attempts; False when it is not failed."""
    model = TABLES[ref.table]
    with store.write() as session:
        result = session.execute(
            update(model)
            .where(model.id == ref.id, model.status == FAILED)
            .values(status=PENDING, attempts=0, next_attempt_at=utcnow(), lease_until=None, claim_token=None)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]
