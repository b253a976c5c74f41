"""Reading and writing complaints: the store's side of schema v1."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Select, func, insert, or_, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from normalizer.errors import TransientError
from normalizer.tracking import LENGTH, canonical_tracking_id, new_tracking_id
from normalizer.types import Attachment, ComplaintRecord
from sinks.store.models import DONE, PENDING, Complaint, InboxMessage, MediaFetch, OutboxMessage, utcnow


class DrawId(Protocol):
    """Where tracking ids come from (``new_tracking_id``; a test hands in a sequence that collides)."""

    def __call__(self, *, length: int = LENGTH) -> str: ...


SCHEMA_FIELDS: tuple[str, ...] = (
    "tracking_id",
    "kind",
    "channel",
    "provider",
    "source",
    "external_id",
    "received_at",
    "reporter",
    "subject",
    "body",
    "category",
    "location",
    "attachments",
    "parent_tracking_id",
    "entered_by",
    "status",
    "inbox_id",
    "priority",
    "auto",
    "related",
    "agency",
    "due_at",
)


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def complaint_record(complaint: Complaint | SimpleNamespace) -> dict[str, Any]:
    """The schema-v1 record of a stored complaint (or of its column values, as a namespace).

    Anonymous reporters have no identity here.
    """
    anonymous = complaint.anonymity == "anonymous"
    location = None
    if any(
        value is not None
        for value in (
            complaint.location_text,
            complaint.lat,
            complaint.lon,
            complaint.region_code,
            complaint.region_name,
        )
    ):
        location = {
            "text": complaint.location_text,
            "lat": complaint.lat,
            "lon": complaint.lon,
            "region_code": complaint.region_code,
            "region_name": complaint.region_name,
            "region_level": complaint.region_level,
            "region_path": list(complaint.region_path or []),
        }
    return {
        "schema": "v1",
        "tracking_id": complaint.tracking_id,
        "kind": complaint.kind,
        "channel": complaint.channel,
        "provider": complaint.provider,
        "source": complaint.source,
        "external_id": complaint.external_id,
        "received_at": iso(complaint.received_at),
        "reporter": {
            "name": None if anonymous else complaint.reporter_name,
            "phone": None if anonymous else complaint.reporter_phone,
            "email": None if anonymous else complaint.reporter_email,
            "telegram_id": None if anonymous else complaint.reporter_telegram_id,
            "anonymity": complaint.anonymity,
        },
        "subject": complaint.subject,
        "body": complaint.body,
        "category": complaint.category,
        "location": location,
        "attachments": list(complaint.attachments),
        "parent_tracking_id": complaint.parent_tracking_id,
        "entered_by": complaint.entered_by,
        "status": complaint.status,
        "inbox_id": complaint.inbox_id,
        "priority": complaint.priority,
        "auto": complaint.auto,
        "related": list(complaint.related),
        "agency": complaint.agency,
        "due_at": iso(complaint.due_at),
    }


def complaint_fields(
    record: ComplaintRecord, inbox_id: int, part: int, reply_address: str | None, now: datetime
) -> dict[str, Any]:
    """The complaint table's column values for a record (the tracking id is drawn when it is inserted)."""
    reporter = record.reporter
    location = record.location
    anonymous = reporter.anonymity == "anonymous"
    return dict(
        tracking_id="",
        inbox_id=inbox_id,
        part=part,
        kind=record.kind,
        channel=record.channel,
        provider=record.provider,
        source=record.source,
        external_id=record.external_id,
        received_at=record.received_at,
        stored_at=now,
        # Anonymous means anonymous in the store too, not only in exports.
        reporter_name=None if anonymous else reporter.name,
        reporter_phone=None if anonymous else reporter.phone,
        reporter_email=None if anonymous else reporter.email,
        reporter_telegram_id=None if anonymous else reporter.telegram_id,
        anonymity=reporter.anonymity,
        subject=record.subject,
        body=record.body,
        category=record.category,
        location_text=location.text if location else None,
        lat=location.lat if location else None,
        lon=location.lon if location else None,
        region_code=location.region_code if location else None,
        region_name=location.region_name if location else None,
        region_level=location.region_level if location else None,
        region_path=[{"code": code, "name": name} for code, name in location.region_path] if location else None,
        priority=record.priority,
        auto=record.auto,
        related=list(record.related),
        attachments=[attachment_fields(a) for a in record.attachments],
        parent_tracking_id=record.parent_tracking_id,
        entered_by=record.entered_by,
        status=record.status,
        reply_address=None if anonymous else reply_address,
        agency=None,
        due_at=None,
        agency_ref=None,
        agency_updated_at=None,
    )


def attachment_fields(attachment: Attachment) -> dict[str, Any]:
    """An attachment as the complaint row (and schema v1) lists it."""
    return {
        "filename": attachment.filename,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "sha256": attachment.sha256,
    }


def insert_complaint(session: Session, fields: dict[str, Any], draw: DrawId = new_tracking_id) -> None:
    """Insert a complaint with a fresh tracking id, drawing again (and growing the id) on a collision."""
    for attempt in range(12):
        fields["tracking_id"] = draw(length=LENGTH + attempt // 4)
        try:
            with session.begin_nested():
                session.execute(insert(Complaint).values(fields))
            return
        except IntegrityError:
            if complaint_for_part(session, fields["inbox_id"], fields["part"]) is not None:
                raise
    raise TransientError("could not find a free tracking id")


def complaint_for_part(session: Session, inbox_id: int, part: int) -> Complaint | None:
    return session.execute(
        select(Complaint).where(col(Complaint.inbox_id) == inbox_id, col(Complaint.part) == part)
    ).scalar_one_or_none()


def complaint_by_tracking_id(session: Session, tracking_id: str) -> Complaint | None:
    return session.execute(select(Complaint).where(col(Complaint.tracking_id) == tracking_id)).scalar_one_or_none()


def complaints_for_inbox(session: Session, inbox_id: int) -> list[Complaint]:
    return list(
        session.execute(
            select(Complaint).where(col(Complaint.inbox_id) == inbox_id).order_by(col(Complaint.part))
        ).scalars()
    )


def recent_complaint_from(
    session: Session, channel: str, provider: str, reply_address: str, since: datetime
) -> Complaint | None:
    """The newest complaint (not a follow-up) from this address since ``since``: a chat's open complaint."""
    return session.execute(
        select(Complaint)
        .where(
            col(Complaint.channel) == channel,
            col(Complaint.provider) == provider,
            col(Complaint.reply_address) == reply_address,
            col(Complaint.received_at) >= since,
            col(Complaint.parent_tracking_id).is_(None),
        )
        .order_by(col(Complaint.received_at).desc(), col(Complaint.id).desc())
        .limit(1)
    ).scalar_one_or_none()


def tracking_id_of_reply(session: Session, provider_message_ids: Sequence[str]) -> str | None:
    """The complaint an earlier reply of ours belonged to, by the provider's id of that reply."""
    if not provider_message_ids:
        return None
    return session.execute(
        select(col(OutboxMessage.tracking_id))
        .where(col(OutboxMessage.provider_message_id).in_(list(provider_message_ids)))
        .where(col(OutboxMessage.tracking_id).is_not(None))
        .limit(1)
    ).scalar_one_or_none()


@dataclass(frozen=True)
class Page:
    items: list[Complaint]
    next_cursor: str | None


def encode_cursor(complaint: Complaint) -> str:
    return base64.urlsafe_b64encode(json.dumps([iso(complaint.received_at), complaint.id]).encode()).decode()


# Ids are 64-bit signed integers in every store: a larger number is no row of ours, and the driver would fail.
MAX_ID = 2**63 - 1


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """The (received_at, id) a cursor of ours carries; ``ValueError`` for anything else, whatever its shape."""
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, RecursionError) as exc:  # bad base64, bad UTF-8, bad JSON are all ValueErrors
        raise ValueError("cursor is not one this server gave out") from exc
    if not (
        isinstance(decoded, list)
        and len(decoded) == 2
        and isinstance(decoded[0], str)
        and type(decoded[1]) is int
        and 0 < decoded[1] <= MAX_ID
    ):
        raise ValueError("cursor is not one this server gave out")
    try:
        received_at = datetime.fromisoformat(decoded[0].replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError("cursor is not one this server gave out") from exc
    if received_at.tzinfo is None:
        raise ValueError("cursor is not one this server gave out")
    return received_at, decoded[1]


def like_pattern(text: str) -> str:
    """``%text%`` for LIKE with ``\\``, ``%`` and ``_`` in ``text`` matched as themselves (escape ``\\``)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def matching_text(text: str) -> ColumnElement[bool]:
    """Subject, body or tracking id containing ``text``; a tracking id in any spelling finds its complaint."""
    pattern = like_pattern(text.strip().lower())
    return or_(
        col(Complaint.tracking_id) == (canonical_tracking_id(text) or ""),
        func.lower(col(Complaint.body)).like(pattern, escape="\\"),
        func.lower(func.coalesce(col(Complaint.subject), "")).like(pattern, escape="\\"),
        func.lower(col(Complaint.tracking_id)).like(pattern, escape="\\"),
    )


def page_of(session: Session, query: Select[Complaint], cursor: str | None, limit: int) -> Page:
    """Newest first, keyset-paginated on (received_at, id) so pages stay stable while rows arrive."""
    if cursor:
        before_at, before_id = decode_cursor(cursor)
        # A row-value comparison: PostgreSQL and SQLite both seek ix_complaint_received_at_id with it.
        query = query.where(tuple_(col(Complaint.received_at), col(Complaint.id)) < tuple_(before_at, before_id))
    query = query.order_by(col(Complaint.received_at).desc(), col(Complaint.id).desc()).limit(limit + 1)
    rows = list(session.execute(query).scalars())
    items = rows[:limit]
    return Page(items=items, next_cursor=encode_cursor(items[-1]) if len(rows) > limit else None)


def list_complaints(
    session: Session,
    *,
    channel: str | None = None,
    since: datetime | None = None,
    q: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page:
    if since is not None and since.tzinfo is None:
        raise ValueError("since needs a time zone, e.g. 2026-11-25T08:00:00+07:00 or 2026-11-25T01:00:00Z")
    query = select(Complaint)
    if channel:
        query = query.where(col(Complaint.channel) == channel)
    if since:
        query = query.where(col(Complaint.received_at) >= since)
    if q and q.strip():
        query = query.where(matching_text(q))
    return page_of(session, query, cursor, limit)


# Statuses after which a complaint is no longer open (a new report of the same problem is not a duplicate).
CLOSED_STATUSES: tuple[str, ...] = ("resolved", "closed", "rejected")


def related_candidates(
    session: Session, category: str, region_code: str, since: datetime, limit: int = 200
) -> list[tuple[str, str | None, str]]:
    """(tracking_id, subject, body) of open complaints of one category and region since ``since``, newest first.

    One query on ``ix_complaint_related``; follow-ups are left out (they continue a complaint, they are not one).
    """
    rows = session.execute(
        select(col(Complaint.tracking_id), col(Complaint.subject), col(Complaint.body))
        .where(
            col(Complaint.category) == category,
            col(Complaint.region_code) == region_code,
            col(Complaint.received_at) >= since,
            col(Complaint.status).not_in(CLOSED_STATUSES),
            col(Complaint.parent_tracking_id).is_(None),
        )
        .order_by(col(Complaint.received_at).desc())
        .limit(limit)
    ).all()
    return [(row[0], row[1], row[2]) for row in rows]


def _since(query: Select[Any], since: datetime | None) -> Select[Any]:
    return query if since is None else query.where(col(Complaint.received_at) >= since)


def complaints_after(session: Session, after_id: int, since: datetime | None, limit: int) -> list[Complaint]:
    """One page of an export: oldest first by id (the primary key, so every page is an index seek)."""
    query = _since(select(Complaint).where(col(Complaint.id) > after_id), since)
    return list(session.execute(query.order_by(col(Complaint.id)).limit(limit)).scalars())


def count_complaints(session: Session, since: datetime | None = None) -> int:
    return int(session.execute(_since(select(func.count()).select_from(Complaint), since)).scalar_one())


def attach(session: Session, tracking_id: str, attachment: dict[str, Any], is_postgres: bool) -> bool:
    """Add a fetched attachment to a complaint's list (row-locked on PostgreSQL); False if it is gone."""
    query = select(Complaint).where(col(Complaint.tracking_id) == tracking_id)
    if is_postgres:
        query = query.with_for_update()
    complaint = session.execute(query).scalars().first()
    if complaint is None:
        return False
    complaint.attachments = [*complaint.attachments, attachment]
    session.add(complaint)
    session.flush()
    return True


def media_jobs_for(session: Session, tracking_id: str) -> list[MediaFetch]:
    """The attachments a complaint still waits for, or gave up on (the detail page shows them)."""
    query = (
        select(MediaFetch)
        .where(col(MediaFetch.tracking_id) == tracking_id, col(MediaFetch.status) != DONE)
        .order_by(col(MediaFetch.position))
    )
    return list(session.execute(query).scalars())


def _due_now() -> dict[str, Any]:
    """The columns every new queue row (outbox, media fetch) starts with: due at once, never tried."""
    now = utcnow()
    return {
        "status": PENDING,
        "attempts": 0,
        "created_at": now,
        "next_attempt_at": now,
        "lease_until": None,
        "claim_token": None,
        "last_error": None,
        "error_type": None,
    }


def outbox_values(
    kind: str, target: str, key: str, payload: dict[str, Any], tracking_id: str | None = None
) -> dict[str, Any]:
    """Column values of a new outbox row (a reply to a citizen or a forward), due at once."""
    return {
        "kind": kind,
        "target": target,
        "idempotency_key": key,
        "tracking_id": tracking_id or payload.get("tracking_id"),
        "payload": payload,
        **_due_now(),
        "sent_at": None,
        "provider_message_id": None,
        "delivery_status": None,
    }


def media_values(
    key: str, tracking_id: str, inbox_id: int, channel: str, position: int, descriptor: dict[str, Any]
) -> dict[str, Any]:
    """Column values of a new media job (one attachment still to fetch for a stored complaint), due at once."""
    return {
        "idempotency_key": key,
        "tracking_id": tracking_id,
        "inbox_id": inbox_id,
        "channel": channel,
        "position": position,
        "descriptor": dict(descriptor),
        **_due_now(),
        "fetched_at": None,
        "sha256": None,
    }


def inbox_row(session: Session, inbox_id: int) -> InboxMessage | None:
    return session.get(InboxMessage, inbox_id)


def now() -> datetime:
    return utcnow()


def replies_of(session: Session, tracking_id: str) -> list[dict[str, Any]]:
    """What we sent the citizen about a complaint, oldest first, with the provider's word on delivery.

    Single-record views add these as ``replies``: ``status`` is ours (pending, done, failed),
    ``delivery_status`` the provider's receipt (``delivered``, ``read``, ``failed``…), None until one came.
    The address is left out: it is the reporter's, and anonymous reporters have none in any view.
    """
    rows = session.execute(
        select(OutboxMessage)
        .where(col(OutboxMessage.kind) == "reply", col(OutboxMessage.tracking_id) == tracking_id)
        .order_by(col(OutboxMessage.id))
    ).scalars()
    return [
        {
            "channel": row.target,
            "text": row.payload.get("text"),
            "status": row.status,
            "attempts": row.attempts,
            "sent_at": iso(row.sent_at),
            "provider_message_id": row.provider_message_id,
            "delivery_status": row.delivery_status,
        }
        for row in rows
    ]
