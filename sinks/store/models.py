"""The central store's tables (SQLModel). Migrations in ``migrations/versions`` create them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, Dialect, Index, LargeBinary, UniqueConstraint
from sqlalchemy.types import DateTime, TypeDecorator
from sqlmodel import Field, SQLModel

# Row states shared by the inbox and the outbox.
PENDING = "pending"
PROCESSING = "processing"
DONE = "done"
FAILED = "failed"
IGNORED = "ignored"


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps are UTC everywhere; SQLite forgets the zone, so it is put back on the way out."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use UTC-aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ts(nullable: bool = False, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class InboxMessage(SQLModel, table=True):
    """One raw provider message, exactly as it arrived; unique per (channel, provider, external_id)."""

    __tablename__ = "inbox"
    __table_args__ = (
        UniqueConstraint("channel", "provider", "external_id", name="uq_inbox_provider_message"),
        Index("ix_inbox_due", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=32)
    provider: str = Field(max_length=32)
    external_id: str = Field(max_length=512)
    received_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    headers: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default=PENDING, max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    lease_until: datetime | None = _ts(nullable=True)
    claim_token: str | None = Field(default=None, max_length=64)
    last_error: str | None = None
    error_type: str | None = Field(default=None, max_length=128)
    processed_at: datetime | None = _ts(nullable=True)
    # Set when retention purged ``raw`` (then empty): what the payload was, without keeping it.
    raw_sha256: str | None = Field(default=None, max_length=64)
    raw_size: int | None = None
    purged_at: datetime | None = _ts(nullable=True)


class Complaint(SQLModel, table=True):
    """The common complaint record (schema v1), one row per complaint."""

    __tablename__ = "complaint"
    __table_args__ = (
        # One inbox row (and message part) makes at most one complaint, however often it is replayed.
        UniqueConstraint("inbox_id", "part", name="uq_complaint_inbox_part"),
        Index("ix_complaint_reply_address", "channel", "provider", "reply_address", "received_at"),
        # Likely duplicates: open complaints of one category and region, newest first (normalizer).
        Index("ix_complaint_related", "category", "region_code", "received_at"),
        # Keyset paging newest first (migration 0007).
        Index("ix_complaint_received_at_id", "received_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tracking_id: str = Field(max_length=32, unique=True)
    inbox_id: int = Field(foreign_key="inbox.id", index=True)
    part: int = 0
    kind: str = Field(max_length=32)
    channel: str = Field(max_length=32, index=True)
    provider: str = Field(max_length=32)
    source: str | None = Field(default=None, max_length=32)
    external_id: str = Field(max_length=512)
    received_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    stored_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    reporter_name: str | None = None
    reporter_phone: str | None = Field(default=None, max_length=32)
    reporter_email: str | None = Field(default=None, max_length=320)
    reporter_telegram_id: str | None = Field(default=None, max_length=64)
    anonymity: str = Field(default="public", max_length=16)
    subject: str | None = None
    body: str
    category: str | None = Field(default=None, max_length=64)
    location_text: str | None = None
    lat: float | None = None
    lon: float | None = None
    region_code: str | None = Field(default=None, max_length=16)
    region_name: str | None = None
    region_level: str | None = Field(default=None, max_length=16)
    region_path: list[dict[str, str]] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    priority: str = Field(default="normal", max_length=16)
    # What the normalizer decided and why (schema v1 ``auto``); None for records stored before it ran.
    auto: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    related: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    attachments: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    parent_tracking_id: str | None = Field(default=None, max_length=32, index=True)
    entered_by: str | None = Field(default=None, max_length=200)
    status: str = Field(default="received", max_length=32)
    # Where replies go (phone, chat id, mail address): also finds a chat's open complaint for follow-ups.
    reply_address: str | None = Field(default=None, max_length=320)
    # The lifecycle (gateway/lifecycle.py): the agency (OPD) it is with and when the current step is due.
    agency: str | None = Field(default=None, max_length=64, index=True)
    due_at: datetime | None = _ts(nullable=True, index=True)
    # The agency system's id for it (Open311 service_request_id) and the newest update of theirs applied.
    agency_ref: str | None = Field(default=None, max_length=255, index=True)
    agency_updated_at: datetime | None = _ts(nullable=True)


class ComplaintEvent(SQLModel, table=True):
    """One status change (or correction) of a complaint; append-only, written by gateway/lifecycle.py alone."""

    __tablename__ = "complaint_event"

    id: str = Field(primary_key=True, max_length=40)  # evt_<hex>: also the webhook-id of its delivery
    tracking_id: str = Field(max_length=32, index=True)
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    from_status: str | None = Field(default=None, max_length=32)
    to_status: str = Field(max_length=32, index=True)
    actor_kind: str = Field(max_length=16)  # staff | agency | system | citizen
    actor_name: str = Field(max_length=200)
    agency: str | None = Field(default=None, max_length=64, index=True)
    public_note: str | None = None
    internal_note: str | None = None
    source: str = Field(max_length=16)  # web | api | cli | open311 | webhook | channel
    reason: str | None = Field(default=None, max_length=32)
    duplicate_of: str | None = Field(default=None, max_length=32)
    category: str | None = Field(default=None, max_length=64)
    region_code: str | None = Field(default=None, max_length=16)
    # What the citizen was told (or why not): shown on the timeline.
    notice: str | None = None
    # An API Idempotency-Key or an agency system's update id: the same change twice is one event.
    dedupe_key: str | None = Field(default=None, max_length=255, unique=True)


class OutboxMessage(SQLModel, table=True):
    """Something to deliver at least once: a reply to a citizen or a forward to another system."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)  # "reply" | "forward"
    target: str = Field(max_length=64)  # the channel name for replies, the sink name for forwards
    idempotency_key: str = Field(max_length=255, unique=True)
    tracking_id: str | None = Field(default=None, max_length=32, index=True)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default=PENDING, max_length=16)
    attempts: int = 0
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    next_attempt_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    lease_until: datetime | None = _ts(nullable=True)
    claim_token: str | None = Field(default=None, max_length=64)
    last_error: str | None = None
    error_type: str | None = Field(default=None, max_length=128)
    sent_at: datetime | None = _ts(nullable=True)
    provider_message_id: str | None = Field(default=None, max_length=255, index=True)
    delivery_status: str | None = Field(default=None, max_length=32)


class ApiToken(SQLModel, table=True):
    """A bearer token for the API; only its SHA-256 is kept (tokens are 256-bit random)."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, index=True)
    role: str = Field(max_length=16)
    # For role ``agency``: the one agency (OPD) code the token acts for.
    agency: str | None = Field(default=None, max_length=64)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    revoked_at: datetime | None = _ts(nullable=True)


class ChannelState(SQLModel, table=True):
    """Small durable state of listeners and pollers (IMAP UIDs, Telegram offset, SMPP parts)."""

    __tablename__ = "channel_state"

    key: str = Field(primary_key=True, max_length=255)
    value: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class StaffUser(SQLModel, table=True):
    """A person who signs in to the web pages: call-center agent or admin. Only an argon2 hash is kept."""

    __tablename__ = "staff_user"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True)
    role: str = Field(max_length=16)
    # For role ``agency``: the one agency (OPD) code the account acts for.
    agency: str | None = Field(default=None, max_length=64)
    password_hash: str = Field(max_length=255)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    disabled_at: datetime | None = _ts(nullable=True)
    # Wrong passwords in a row; reset by a good one. Past a threshold the account locks for a while.
    failed_logins: int = 0
    locked_until: datetime | None = _ts(nullable=True)
    last_login_at: datetime | None = _ts(nullable=True)


class WebSession(SQLModel, table=True):
    """A signed-in browser; kept in the database so any gateway instance behind a load balancer knows it."""

    __tablename__ = "web_session"

    # SHA-256 of the cookie value: a leaked table does not hand out live sessions.
    token_hash: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="staff_user.id", index=True)
    csrf_token: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))


class AuditEntry(SQLModel, table=True):
    """Who did what to which failed message, when, and what came of it (replays and dry runs)."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    actor: str = Field(max_length=200)
    action: str = Field(max_length=32)
    target: str = Field(max_length=64)
    result: str = Field(max_length=32)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Throttle(SQLModel, table=True):
    """A counter per key (``login-user:siti``, ``login-address:203.0.113.9``, ``ack-email:…``) in a window.

    Sign-in counts misses and sets ``retry_at`` (a growing delay, not a lock); acknowledgement
    mails count sends per recipient. Rows are read ``FOR UPDATE`` so two processes never lose a count.
    """

    __tablename__ = "throttle"

    key: str = Field(primary_key=True, max_length=400)
    count: int = 0
    window_start: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    retry_at: datetime | None = _ts(nullable=True)
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))


class MediaFetch(SQLModel, table=True):
    """One attachment still to fetch for a stored complaint: retried, dead-lettered and replayed like the outbox.

    The complaint and its acknowledgement never wait for media; the job attaches the file when it arrives.
    """

    __tablename__ = "media_fetch"
    __table_args__ = (Index("ix_media_fetch_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=255, unique=True)  # media:<inbox id>:<part>:<position>
    tracking_id: str = Field(max_length=32, index=True)
    inbox_id: int = Field(foreign_key="inbox.id")
    channel: str = Field(max_length=64)  # the registry name whose ``fetch_media`` knows the descriptor
    position: int = 0  # the attachment's place among the message's media
    descriptor: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default=PENDING, max_length=16)
    attempts: int = 0
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    next_attempt_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    lease_until: datetime | None = _ts(nullable=True)
    claim_token: str | None = Field(default=None, max_length=64)
    last_error: str | None = None
    error_type: str | None = Field(default=None, max_length=128)
    fetched_at: datetime | None = _ts(nullable=True)
    sha256: str | None = Field(default=None, max_length=64)
