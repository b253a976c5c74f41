"""Re-reading stored complaints with the current normalizer, and learning from what staff corrected.

``renormalize`` parses each complaint's raw inbox message again, runs the
normalizer and updates only the fields that were automatic: a field a person set
(a category the agent chose, a region staff corrected) differs from what ``auto``
recorded for it and is left alone. Every record it touches gets the new ``auto``
(with the normalizer version).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from gateway.registry import by_provider
from normalizer import NewComplaint, normalize
from normalizer.classify import Example
from normalizer.types import ComplaintRecord
from normalizer.understand import Understanding
from sinks.store.db import Store
from sinks.store.models import Complaint

PAGE = 200


@dataclass
class Renormalized:
    seen: int = 0
    changed: int = 0
    no_raw: int = 0
    fields: dict[str, int] = field(default_factory=dict)
    changes: list[dict[str, Any]] = field(default_factory=list)  # the first ones, for a dry run to show


def _auto_code(auto: dict[str, Any] | None, name: str) -> Any:
    decision = (auto or {}).get(name)
    return decision.get("code") if isinstance(decision, dict) else None


def _automatic(complaint: Complaint, name: str, stored: Any, given_by_channel: bool) -> bool:
    """Was this field set by the normalizer (or left empty), rather than by the channel or a person?"""
    if given_by_channel:
        return False
    if complaint.auto is None:
        # Stored before the normalizer ran: only what it left empty or at its default is its own.
        return stored in (None, "normal", "complaint")
    return bool(stored == _auto_code(complaint.auto, name))


def _updates(complaint: Complaint, record: ComplaintRecord, message_kind: Any, channel_region: bool) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if _automatic(complaint, "category", complaint.category, False) and record.category != complaint.category:
        values["category"] = record.category
    if _automatic(complaint, "kind", complaint.kind, message_kind is not None) and record.kind != complaint.kind:
        values["kind"] = record.kind
    if _automatic(complaint, "region", complaint.region_code, channel_region):
        location = record.location
        code = location.region_code if location else None
        if code != complaint.region_code:
            values["region_code"] = code
            values["region_name"] = location.region_name if location else None
            values["region_level"] = location.region_level if location else None
            values["region_path"] = (
                [{"code": c, "name": n} for c, n in location.region_path] if location and code else None
            )
    if _automatic(complaint, "priority", complaint.priority, False) and record.priority != complaint.priority:
        values["priority"] = record.priority
    return values


def _pages(store: Store, since: datetime | None) -> Iterator[list[Complaint]]:
    last = 0
    while True:
        with store.read() as session:
            query = select(Complaint).where(col(Complaint.id) > last)
            if since is not None:
                query = query.where(col(Complaint.received_at) >= since)
            rows = list(session.execute(query.order_by(col(Complaint.id)).limit(PAGE)).scalars())
            session.expunge_all()
        if not rows:
            return
        yield rows
        last = rows[-1].id or last


def count(store: Store, since: datetime | None) -> int:
    with store.read() as session:
        query = select(func.count()).select_from(Complaint)
        if since is not None:
            query = query.where(col(Complaint.received_at) >= since)
        return int(session.execute(query).scalar_one())


def renormalize(
    store: Store,
    understanding: Understanding,
    keywords: list[str],
    since: datetime | None = None,
    dry_run: bool = False,
    progress: Callable[[int], None] = lambda _: None,
) -> Renormalized:
    """Re-run the normalizer over stored complaints; returns what changed (or would)."""
    adapters = by_provider()
    result = Renormalized()
    for rows in _pages(store, since):
        with store.write() as session:
            for complaint in rows:
                result.seen += 1
                values = _reread(session, complaint, adapters, understanding, keywords, result)
                if values is not None:
                    if not dry_run:
                        stored = session.get(Complaint, complaint.id)
                        assert stored is not None
                        for name, value in values.items():
                            setattr(stored, name, value)
                    changed = {k: v for k, v in values.items() if k != "auto"}
                    if changed:
                        result.changed += 1
                        for name in changed:
                            result.fields[name] = result.fields.get(name, 0) + 1
                        if len(result.changes) < 50:
                            result.changes.append({"tracking_id": complaint.tracking_id, **changed})
            if dry_run:
                session.rollback()
        progress(len(rows))
    return result


def _reread(
    session: Session,
    complaint: Complaint,
    adapters: dict[str, Any],
    understanding: Understanding,
    keywords: list[str],
    result: Renormalized,
) -> dict[str, Any] | None:
    from sinks.store.models import InboxMessage

    row = session.get(InboxMessage, complaint.inbox_id)
    adapter = adapters.get(complaint.provider)
    if row is None or adapter is None:
        result.no_raw += 1
        return None
    try:
        messages = adapter.parse(row.raw, {**row.meta, "external_id": row.external_id, "inbox_id": row.id})
    except Exception:
        result.no_raw += 1
        return None
    message = next((m for m in messages if m.part == complaint.part), None)
    if message is None:
        result.no_raw += 1
        return None
    outcome = normalize(message, row.received_at, keywords, understanding)
    if not isinstance(outcome, NewComplaint):
        return None
    channel_region = bool(message.location and message.location.region_code)
    values = _updates(complaint, outcome.record, message.kind, channel_region)
    values["auto"] = outcome.record.auto
    return values


def corrected_examples(store: Store) -> list[Example]:
    """Complaints whose category a person set or corrected (it differs from what the normalizer said)."""
    examples: list[Example] = []
    with store.read() as session:
        rows = session.execute(
            select(
                col(Complaint.subject),
                col(Complaint.body),
                col(Complaint.category),
                col(Complaint.kind),
                col(Complaint.auto),
            ).where(col(Complaint.category).is_not(None))
        ).all()
    for subject, body, category, kind, auto in rows:
        if auto is not None and _auto_code(auto, "category") == category:
            continue
        text = f"{subject}\n{body}" if subject else body
        examples.append(Example(text=text, category=category, kind=kind))
    return examples
