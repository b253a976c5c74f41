"""The complaint lifecycle: the one table of allowed moves and the one writer of status events.

API, CLI, web pages, the worker (a citizen's follow-up reopens) and the Open311 poller all call
``transition`` / ``apply``; nothing else writes ``complaint.status``. Each change is an append-only
``complaint_event`` row written in the same transaction as the complaint's new status and the outbox rows
it causes: the citizen's message on their own channel and the deliveries to the agency's system.

```
received ──verify──▶ verified ──forward──▶ forwarded ──▶ in_progress ──▶ resolved ──▶ closed
   │                    │                      │              ▲  │           │
   └──── reject ────────┴──▶ rejected          └─ misrouted ──┘  └─ reopen ◀─┘
```
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import case, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from channels.gsm import is_gsm
from gateway import media_links, workdays
from gateway.config import Config, SinkConfig
from normalizer.tracking import canonical_tracking_id
from sinks.store import queries
from sinks.store.db import Store
from sinks.store.models import PENDING, PROCESSING, Complaint, ComplaintEvent, OutboxMessage, utcnow

log = structlog.get_logger(__name__)

LIFECYCLE_CHANGED = "lifecycle.changed"
LIFECYCLE_REFUSED = "lifecycle.refused"

RECEIVED, VERIFIED, FORWARDED, IN_PROGRESS, RESOLVED, CLOSED, REJECTED = (
    "received",
    "verified",
    "forwarded",
    "in_progress",
    "resolved",
    "closed",
    "rejected",
)
STATUSES: tuple[str, ...] = (RECEIVED, VERIFIED, FORWARDED, IN_PROGRESS, RESOLVED, CLOSED, REJECTED)
FINAL: tuple[str, ...] = (RESOLVED, CLOSED, REJECTED)
REJECT_REASONS: tuple[str, ...] = ("not_public_service", "incomplete", "duplicate", "out_of_area")
ACTOR_KINDS: tuple[str, ...] = ("staff", "agency", "system", "citizen")
SOURCES: tuple[str, ...] = ("web", "api", "cli", "open311", "webhook", "channel", "system")

# The one table: status -> the statuses it may move to. ``in_progress -> in_progress`` is a new progress
# note; ``forwarded|in_progress -> verified`` is the agency handing a misrouted complaint back.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    RECEIVED: (VERIFIED, REJECTED),
    VERIFIED: (FORWARDED, REJECTED),
    FORWARDED: (IN_PROGRESS, RESOLVED, VERIFIED),
    IN_PROGRESS: (IN_PROGRESS, RESOLVED, VERIFIED),
    RESOLVED: (CLOSED, IN_PROGRESS),
    CLOSED: (),
    REJECTED: (),
}
# Moves an agency (its liaison officer, its system) may make on a complaint that is with it.
AGENCY_MOVES: frozenset[tuple[str, str]] = frozenset(
    {
        (FORWARDED, IN_PROGRESS),
        (FORWARDED, RESOLVED),
        (IN_PROGRESS, IN_PROGRESS),
        (IN_PROGRESS, RESOLVED),
        (FORWARDED, VERIFIED),
        (IN_PROGRESS, VERIFIED),
    }
)
CITIZEN_MOVES: frozenset[tuple[str, str]] = frozenset({(RESOLVED, IN_PROGRESS)})
# The system forwards on its own (lifecycle.auto_forward) and applies agencies' updates.
SYSTEM_MOVES: frozenset[tuple[str, str]] = AGENCY_MOVES | CITIZEN_MOVES | {(VERIFIED, FORWARDED)}

REGION_CODE = re.compile(r"^\d{2}(\.\d{2}(\.\d{2}(\.\d{4})?)?)?$")
_BELUM_SELESAI = re.compile(r"\b(belum|blm)\s+(selesai|beres|tuntas)\b", re.IGNORECASE)
# "belum selesai" alone answers our resolution; a long text that says it is more likely a new complaint.
_SHORT_ANSWER = 160
# Conservative sizes: three concatenated SMS parts, and the chat apps' own message limits.
_TEXT_LIMITS = {"sms": 459, "whatsapp": 4096, "telegram": 4096}
_UCS2_SMS_LIMIT = 201
WHATSAPP_WINDOW = timedelta(hours=24)
IN_ORDER_GAP = timedelta(seconds=2)


class LifecycleError(Exception):
    """A change that cannot be made; ``status`` is the HTTP answer (403, 404, 409, 422)."""

    status = 422


class NotFound(LifecycleError):
    status = 404


class Forbidden(LifecycleError):
    status = 403


class Invalid(LifecycleError):
    status = 422


class Refused(LifecycleError):
    """Not a move the table allows from the complaint's current status."""

    status = 409

    def __init__(self, tracking_id: str, current: str, wanted: str) -> None:
        self.current = current
        self.allowed = TRANSITIONS.get(current, ())
        allowed = ", ".join(self.allowed) or "nothing (final)"
        super().__init__(f"{tracking_id} is {current}; it cannot go to {wanted} (allowed from {current}: {allowed})")


@dataclass(frozen=True)
class Actor:
    kind: str  # staff | agency | system | citizen
    name: str
    agency: str | None = None  # the agency an agency actor acts for
    admin: bool = False  # staff with the admin role

    def __post_init__(self) -> None:
        if self.kind not in ACTOR_KINDS:
            raise ValueError(f"actor kind must be one of {', '.join(ACTOR_KINDS)}")


@dataclass(frozen=True)
class Change:
    """What a caller asks for; ``to`` None (or the current status) with category/region is a correction."""

    to: str | None = None
    public_note: str | None = None
    internal_note: str | None = None
    agency: str | None = None
    reason: str | None = None
    duplicate_of: str | None = None
    category: str | None = None
    region_code: str | None = None
    source: str = "api"
    # Idempotency-Key, or an agency system's own update id: the same change twice makes one event.
    dedupe_key: str | None = None
    at: datetime | None = None


@dataclass(frozen=True)
class Applied:
    event: dict[str, Any]
    created: bool  # False: the dedupe key had already made this event
    record: dict[str, Any] = field(default_factory=dict)


def allowed_moves(status: str) -> tuple[str, ...]:
    return TRANSITIONS.get(status, ())


def event_view(event: ComplaintEvent, internal: bool = True) -> dict[str, Any]:
    """An event as records, the API and webhooks show it; internal notes only for staff."""
    view: dict[str, Any] = {
        "id": event.id,
        "tracking_id": event.tracking_id,
        "from": event.from_status,
        "to": event.to_status,
        "at": queries.iso(event.at),
        "actor": {"kind": event.actor_kind, "name": event.actor_name},
        "agency": event.agency,
        "public_note": event.public_note,
        "source": event.source,
        "reason": event.reason,
        "duplicate_of": event.duplicate_of,
        "category": event.category,
        "region_code": event.region_code,
        "notice": event.notice,
    }
    if internal:
        view["internal_note"] = event.internal_note
    return view


def events_of(session: Session, tracking_id: str) -> list[ComplaintEvent]:
    return list(
        session.execute(
            select(ComplaintEvent)
            .where(col(ComplaintEvent.tracking_id) == tracking_id)
            .order_by(col(ComplaintEvent.at), col(ComplaintEvent.id))
        ).scalars()
    )


def record_with_events(session: Session, complaint: Complaint, internal: bool = True) -> dict[str, Any]:
    """The single-record view: schema v1 plus ``events`` (the status history)."""
    record = queries.complaint_record(complaint)
    record["events"] = [event_view(event, internal) for event in events_of(session, complaint.tracking_id)]
    return record


def public_timeline(session: Session, config: Config, tracking_id: str) -> list[dict[str, Any]]:
    """The history a citizen may see (the public status page): when, which step, which agency, public notes.

    No actor names, no internal notes, no corrections, no reasons beyond the plain words the citizen was told.
    """
    steps: list[dict[str, Any]] = []
    for event in events_of(session, tracking_id):
        if event.from_status == event.to_status and event.to_status != IN_PROGRESS:
            continue
        steps.append(
            {
                "at": queries.iso(event.at),
                "status": event.to_status,
                "status_text": config.replies.status_texts.get(event.to_status, event.to_status),
                "agency_name": agency_name(config, event.agency) if event.agency else None,
                "public_note": event.public_note,
                "reason_text": config.replies.reject_reasons.get(event.reason or "", None) if event.reason else None,
            }
        )
    return steps


def latest_public_note(session: Session, tracking_id: str) -> str | None:
    return session.execute(
        select(col(ComplaintEvent.public_note))
        .where(col(ComplaintEvent.tracking_id) == tracking_id, col(ComplaintEvent.public_note).is_not(None))
        .order_by(col(ComplaintEvent.at).desc(), col(ComplaintEvent.id).desc())
        .limit(1)
    ).scalar_one_or_none()


# ---- routing -------------------------------------------------------------------------------------


def _region_depth(prefix: str, region_code: str | None) -> int | None:
    """How many dotted parts of ``region_code`` the prefix covers, or None when it does not match."""
    if not region_code:
        return None
    if region_code == prefix or region_code.startswith(prefix + "."):
        return prefix.count(".") + 1
    return None


def _rule_scores(config: Config, category: str | None, region_code: str | None) -> dict[str, tuple[int, int]]:
    """Matching agencies with their specificity: naming the category first, then the deeper region prefix."""
    scores: dict[str, tuple[int, int]] = {}
    for code, agency in config.agencies.items():
        if agency.categories and category not in agency.categories:
            continue
        depth = 0
        if agency.regions:
            depths = [d for d in (_region_depth(p, region_code) for p in agency.regions) if d is not None]
            if not depths:
                continue
            depth = max(depths)
        scores[code] = (1 if agency.categories else 0, depth)
    return scores


def suggest_agencies(config: Config, category: str | None, region_code: str | None) -> list[str]:
    """Agencies whose rule matches, the most specific first (ties by code)."""
    scores = _rule_scores(config, category, region_code)
    return sorted(scores, key=lambda code: (-scores[code][0], -scores[code][1], code))


def unique_suggestion(config: Config, category: str | None, region_code: str | None) -> str | None:
    """The best agency when exactly one rule is the most specific match (else the admin picks)."""
    scores = _rule_scores(config, category, region_code)
    if not scores:
        return None
    best = max(scores.values())
    top = [code for code, score in scores.items() if score == best]
    return top[0] if len(top) == 1 else None


def agency_name(config: Config, code: str | None) -> str:
    if code is None:
        return "instansi terkait"
    agency = config.agencies.get(code)
    return agency.name if agency else code


# ---- due dates -----------------------------------------------------------------------------------


def zone(config: Config) -> ZoneInfo:
    return ZoneInfo(config.http.timezone)


def verify_due(config: Config, at: datetime) -> datetime:
    return workdays.due_after(at, config.lifecycle.verify_working_days, zone(config))


def _due_at(config: Config, complaint: Complaint, to: str, at: datetime, reopened: bool) -> datetime | None:
    if to in FINAL:
        return None
    if to == VERIFIED:
        return verify_due(config, at)
    if to == FORWARDED or reopened:
        return workdays.due_after(at, config.lifecycle.resolve_working_days, zone(config))
    return complaint.due_at


def is_overdue(complaint: Complaint | Any, now: datetime | None = None) -> bool:
    due = complaint.due_at
    return due is not None and complaint.status not in FINAL and due < (now or utcnow())


# ---- the writer ----------------------------------------------------------------------------------


def _check_actor(complaint: Complaint, actor: Actor, current: str, to: str, correction: bool) -> None:
    if actor.kind == "staff":
        if not actor.admin:
            raise Forbidden("changing a complaint's status needs the admin role")
        return
    if correction:
        raise Forbidden("only admins correct a complaint's category or region")
    if actor.kind == "agency":
        if actor.agency is None or complaint.agency != actor.agency:
            raise Forbidden(f"{complaint.tracking_id} is not with agency {actor.agency}")
        if (current, to) not in AGENCY_MOVES:
            raise Forbidden(f"an agency cannot move a complaint from {current} to {to}")
    elif actor.kind == "citizen":
        if (current, to) not in CITIZEN_MOVES:
            raise Forbidden("a citizen can only reopen a resolved complaint")
    elif (current, to) not in SYSTEM_MOVES:
        raise Forbidden(f"the system does not move a complaint from {current} to {to} on its own")


def _validate(session: Session, config: Config, complaint: Complaint, change: Change, to: str) -> Change:
    """The change with what it implies filled in (the agency on forward), or Invalid."""
    if change.category is not None and change.category not in config.categories:
        raise Invalid(f"category {change.category!r} is not in the taxonomy; allowed: {', '.join(config.categories)}")
    if change.region_code is not None and not REGION_CODE.match(change.region_code):
        raise Invalid(f"region_code {change.region_code!r} is not a Kemendagri code such as 33.28 or 33.28.05")
    if change.source not in SOURCES:
        raise Invalid(f"source must be one of {', '.join(SOURCES)}")
    if to == REJECTED:
        if change.reason not in REJECT_REASONS:
            raise Invalid(f"a rejection needs a reason: {', '.join(REJECT_REASONS)}")
        if change.reason == "duplicate":
            original = canonical_tracking_id(change.duplicate_of or "")
            if original is None or original == complaint.tracking_id:
                raise Invalid("a duplicate needs duplicate_of: the tracking id of the complaint it repeats")
            if queries.complaint_by_tracking_id(session, original) is None:
                raise Invalid(f"duplicate_of: no complaint {original}")
            change = _replace(change, duplicate_of=original)
    elif change.reason is not None or change.duplicate_of is not None:
        raise Invalid("reason and duplicate_of belong to a rejection only")
    if to == FORWARDED:
        category = change.category or complaint.category
        region = change.region_code or complaint.region_code
        agency = change.agency or unique_suggestion(config, category, region)
        if agency is None:
            raise Invalid("forwarding needs an agency: no unique routing rule matches, pick one")
        if agency not in config.agencies:
            raise Invalid(f"agency {agency!r} is not configured; known: {', '.join(config.agencies) or 'none'}")
        change = _replace(change, agency=agency)
    elif change.agency is not None and change.agency != complaint.agency:
        raise Invalid("an agency is chosen by forwarding (to: forwarded)")
    if to == RESOLVED and not (change.public_note or "").strip():
        raise Invalid("resolving needs the answer for the citizen (public_note)")
    if to == IN_PROGRESS and complaint.status == IN_PROGRESS and not (change.public_note or "").strip():
        raise Invalid("a progress update needs a public_note")
    return change


def _replace(change: Change, **values: Any) -> Change:
    return Change(**{**change.__dict__, **values})


def apply(
    session: Session, config: Config, complaint: Complaint, change: Change, actor: Actor, now: datetime | None = None
) -> Applied:
    """Make one change inside the caller's transaction: event, complaint columns and outbox rows together."""
    if change.dedupe_key:
        seen = session.execute(
            select(ComplaintEvent).where(col(ComplaintEvent.dedupe_key) == change.dedupe_key)
        ).scalar_one_or_none()
        if seen is not None:
            return Applied(event_view(seen), created=False, record=queries.complaint_record(complaint))
    at = change.at or now or utcnow()
    current = complaint.status
    to = change.to or current
    correction = to == current and to != IN_PROGRESS
    if to not in STATUSES:
        raise Invalid(f"to must be one of {', '.join(STATUSES)}")
    if correction:
        if change.category is None and change.region_code is None:
            raise Refused(complaint.tracking_id, current, to)
    elif to not in TRANSITIONS.get(current, ()):
        raise Refused(complaint.tracking_id, current, to)
    _check_actor(complaint, actor, current, to, correction)
    change = _validate(session, config, complaint, change, to)

    reopened = current == RESOLVED and to == IN_PROGRESS
    handed_back = to == VERIFIED and current in (FORWARDED, IN_PROGRESS)
    event = ComplaintEvent(
        id=f"evt_{uuid.uuid4().hex}",
        tracking_id=complaint.tracking_id,
        at=at,
        from_status=current,
        to_status=to,
        actor_kind=actor.kind,
        actor_name=actor.name,
        agency=change.agency if to == FORWARDED else (actor.agency or complaint.agency),
        public_note=(change.public_note or "").strip() or None,
        internal_note=(change.internal_note or "").strip() or None,
        source=change.source,
        reason=change.reason,
        duplicate_of=change.duplicate_of,
        category=change.category,
        region_code=change.region_code,
        dedupe_key=change.dedupe_key,
    )
    complaint.due_at = _due_at(config, complaint, to, at, reopened)
    complaint.status = to
    if to == FORWARDED:
        complaint.agency = change.agency
    elif handed_back:
        complaint.agency = None
    if change.category is not None:
        complaint.category = change.category
    if change.region_code is not None:
        complaint.region_code = change.region_code
    record = queries.complaint_record(complaint)
    if not correction:
        event.notice = _tell_citizen(session, config, complaint, event, reopened)
    session.add(event)
    session.add(complaint)
    session.flush()
    if not correction:  # a correction is ours to keep: agencies hear of status changes
        _deliver_to_sinks(session, config, complaint, event, record)
    log.info(LIFECYCLE_CHANGED, tracking_id=complaint.tracking_id, frm=current, to=to, actor=actor.kind)
    applied = Applied(event_view(event), created=True, record=record)
    if to == VERIFIED and not handed_back and config.lifecycle.auto_forward and actor.kind != "system":
        agency = unique_suggestion(config, complaint.category, complaint.region_code)
        if agency is not None:
            system = Actor("system", "auto_forward")
            auto = Change(to=FORWARDED, agency=agency, source="system", at=at)
            forwarded = apply(session, config, complaint, auto, system, now)
            applied = Applied(applied.event, True, forwarded.record)
    return applied


def transition(
    store: Store, config: Config, tracking_id: str, change: Change, actor: Actor, now: datetime | None = None
) -> Applied:
    """Look the complaint up (locked for the change) and apply ``change`` in one transaction."""
    canonical = canonical_tracking_id(tracking_id)
    if canonical is None:
        raise NotFound(f"{tracking_id!r} is not a tracking id")
    try:
        with store.write() as session:
            query = select(Complaint).where(col(Complaint.tracking_id) == canonical)
            if store.is_postgres:
                query = query.with_for_update()
            complaint = session.execute(query).scalar_one_or_none()
            if complaint is None:
                raise NotFound(f"no complaint {canonical}")
            return apply(session, config, complaint, change, actor, now)
    except IntegrityError:
        # Two requests with one dedupe key at once: the other one's event stands.
        if change.dedupe_key is None:
            raise
        with store.read() as session:
            seen = session.execute(
                select(ComplaintEvent).where(col(ComplaintEvent.dedupe_key) == change.dedupe_key)
            ).scalar_one()
            complaint = queries.complaint_by_tracking_id(session, canonical)
            assert complaint is not None
            return Applied(event_view(seen), created=False, record=queries.complaint_record(complaint))
    except LifecycleError as exc:
        log.info(LIFECYCLE_REFUSED, tracking_id=canonical, to=change.to, error=str(exc))
        raise


# ---- telling the citizen -------------------------------------------------------------------------


def _first_reply(session: Session, tracking_id: str) -> OutboxMessage | None:
    """Our acknowledgement of the complaint: its channel, address and provider details are the citizen's own."""
    return session.execute(
        select(OutboxMessage)
        .where(col(OutboxMessage.kind) == "reply", col(OutboxMessage.tracking_id) == tracking_id)
        .order_by(col(OutboxMessage.id))
        .limit(1)
    ).scalar_one_or_none()


def _last_heard(session: Session, complaint: Complaint) -> datetime | None:
    """When this citizen last wrote to us on this channel (any of their complaints or follow-ups)."""
    return session.execute(
        select(col(Complaint.received_at))
        .where(
            col(Complaint.channel) == complaint.channel,
            col(Complaint.provider) == complaint.provider,
            col(Complaint.reply_address) == complaint.reply_address,
        )
        .order_by(col(Complaint.received_at).desc())
        .limit(1)
    ).scalar_one_or_none()


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def citizen_text(config: Config, complaint: Complaint, event: ComplaintEvent, reopened: bool) -> str | None:
    """The message for this change from ``replies.status_changed``, or None when this change tells nothing."""
    replies = config.replies
    key = "reopened" if reopened else event.to_status
    template = replies.status_changed.get(key)
    if template is None or (key == IN_PROGRESS and not event.public_note):
        return None
    reason_text = replies.reject_reasons.get(event.reason or "", event.reason or "")
    values = _Blank(
        tracking_id=complaint.tracking_id,
        agency_name=agency_name(config, complaint.agency or event.agency),
        public_note=event.public_note or "",
        reason_text=reason_text.format_map(_Blank(duplicate_of=event.duplicate_of or "")),
        reopen_days=str(config.lifecycle.reopen_days),
        duplicate_of=event.duplicate_of or "",
    )
    return " ".join(template.format_map(values).split())


def fit(text: str, channel: str) -> str:
    """Within the channel's length: an over-long answer is cut at a word and points to STATUS."""
    limit = _TEXT_LIMITS.get(channel)
    if channel == "sms" and not is_gsm(text):
        limit = _UCS2_SMS_LIMIT  # outside the GSM alphabet a part holds 67 characters, not 153
    if limit is None or len(text) <= limit:
        return text
    tail = "... (selengkapnya: kirim STATUS)"  # plain dots: an ellipsis would leave the GSM alphabet
    cut = text[: limit - len(tail)].rsplit(" ", 1)[0]
    return cut + tail


def _tell_citizen(
    session: Session, config: Config, complaint: Complaint, event: ComplaintEvent, reopened: bool
) -> str | None:
    """Queue the citizen's message; returns what was done, for the timeline."""
    text = citizen_text(config, complaint, event, reopened)
    if text is None:
        return None
    if complaint.anonymity == "anonymous" or not complaint.reply_address:
        return "pelapor anonim atau tanpa alamat balasan: tidak ada pesan"
    first = _first_reply(session, complaint.tracking_id)
    if first is None:
        return f"kanal {complaint.channel} tidak dapat membalas: tidak ada pesan"
    if complaint.channel == "whatsapp":
        heard = _last_heard(session, complaint)
        if heard is not None and event.at - heard > WHATSAPP_WINDOW:
            # Outside the 24-hour customer-service window WhatsApp only takes approved templates.
            return "di luar jendela 24 jam WhatsApp: pesan tidak dikirim, pelapor dapat kirim STATUS"
    payload = dict(first.payload)
    text = fit(text, complaint.channel)
    key = f"status:{event.id}"
    extra = {k: v for k, v in (payload.get("extra") or {}).items() if k != "wamid"}
    payload.update(text=text, idempotency_key=key, tracking_id=complaint.tracking_id, in_reply_to=None, extra=extra)
    row = queries.outbox_values("reply", first.target, key, payload)
    # The outbox sends a batch at once: a message queued behind an unsent one waits, so they arrive in order.
    earlier = session.execute(
        select(func.max(col(OutboxMessage.next_attempt_at))).where(
            col(OutboxMessage.tracking_id) == complaint.tracking_id,
            col(OutboxMessage.kind) == "reply",
            col(OutboxMessage.status).in_([PENDING, PROCESSING]),
            col(OutboxMessage.idempotency_key).startswith("status:"),
        )
    ).scalar_one_or_none()
    if earlier is not None:
        row["next_attempt_at"] = max(row["next_attempt_at"], earlier + IN_ORDER_GAP)
    session.execute(insert(OutboxMessage), [row])
    return f"pesan {event.to_status} diantrekan ke {complaint.channel}"


# ---- the agency's system -------------------------------------------------------------------------


def webhook_body(kind: str, event: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """A Standard Webhooks payload: type, timestamp, data (the event and the schema-v1 record)."""
    return {"type": kind, "timestamp": event["at"], "data": {"event": event, "record": record}}


def _subscribed_webhooks(config: Config, agency: str | None, signed_only: bool = True) -> list[SinkConfig]:
    """Webhook sinks that hear about this complaint: an agency's own sink for its complaints, feeds for all.

    Only signed sinks (with a ``secret``) get events; unsigned ones keep the first cut's new-complaint record.
    """
    named = {each.forward for each in config.agencies.values() if each.forward}
    own = config.agencies[agency].forward if agency in config.agencies else None
    return [
        sink
        for sink in config.sinks
        if sink.type == "webhook"
        and (sink.secret is not None or not signed_only)
        and (sink.name not in named or sink.name == own)
    ]


def created_payloads(config: Config, record: dict[str, Any], at: datetime) -> list[tuple[str, str, dict[str, Any]]]:
    """(sink, idempotency key, payload) for a new complaint: ``complaint.created`` to the feeds."""
    sinks = _subscribed_webhooks(config, None, signed_only=False)
    if not sinks:  # most installations: nothing to build for every complaint the worker stores
        return []
    event = {
        "id": f"evt_created_{record['tracking_id']}",
        "tracking_id": record["tracking_id"],
        "from": None,
        "to": RECEIVED,
        "at": queries.iso(at),
        "actor": {"kind": "system", "name": "gateway"},
        "agency": None,
        "public_note": None,
        "source": "channel",
    }
    signed = webhook_body("complaint.created", event, record)
    return [
        (sink.name, f"forward:{sink.name}:{record['tracking_id']}", signed if sink.secret is not None else record)
        for sink in sinks
    ]


def _deliver_to_sinks(
    session: Session, config: Config, complaint: Complaint, event: ComplaintEvent, record: dict[str, Any]
) -> None:
    public = event_view(event, internal=False)
    rows = [
        queries.outbox_values(
            "forward",
            sink.name,
            f"webhook:{sink.name}:{event.id}",
            webhook_body("complaint.status_changed", public, record),
            complaint.tracking_id,
        )
        for sink in _subscribed_webhooks(config, complaint.agency or event.agency)
    ]
    agency = config.agencies.get(complaint.agency or "")
    sink = config.sink(agency.forward) if agency and agency.forward else None
    if event.to_status == FORWARDED and sink is not None and sink.type == "open311":
        payload = {
            "event": public,
            "record": _record_for_agency(complaint, record),
            "media_url": _media_url(config, complaint),
        }
        rows.append(
            queries.outbox_values(
                "forward", sink.name, f"open311:{sink.name}:{event.id}", payload, complaint.tracking_id
            )
        )
    if rows:
        session.execute(insert(OutboxMessage), rows)


def _record_for_agency(complaint: Complaint, record: dict[str, Any]) -> dict[str, Any]:
    """Confidential reporters' identity stays with us; only ``public`` reporters are named to the agency."""
    if complaint.anonymity == "public":
        return record
    reporter = {**record["reporter"], "name": None, "phone": None, "email": None, "telegram_id": None}
    return {**record, "reporter": reporter}


def _media_url(config: Config, complaint: Complaint) -> str | None:
    photo = next((a for a in complaint.attachments if str(a.get("content_type") or "").startswith("image/")), None)
    secret = config.lifecycle.media_secret
    if photo is None or secret is None:
        return None
    return media_links.signed_url(
        config.http.public_url,
        secret.get_secret_value(),
        complaint.tracking_id,
        str(photo["sha256"]),
        utcnow() + timedelta(hours=config.lifecycle.media_ttl_hours),
    )


# ---- the citizen writes again --------------------------------------------------------------------


def says_not_done(text: str) -> bool:
    return len(text) <= _SHORT_ANSWER and bool(_BELUM_SELESAI.search(text))


def resolved_at(session: Session, tracking_id: str) -> datetime | None:
    return session.execute(
        select(col(ComplaintEvent.at))
        .where(col(ComplaintEvent.tracking_id) == tracking_id, col(ComplaintEvent.to_status) == RESOLVED)
        .order_by(col(ComplaintEvent.at).desc())
        .limit(1)
    ).scalar_one_or_none()


def recently_resolved_from(
    session: Session, config: Config, channel: str, provider: str, reply_address: str, at: datetime
) -> str | None:
    """The newest resolved complaint from this address within ``reopen_days``: what "belum selesai" answers."""
    since = at - timedelta(days=config.lifecycle.reopen_days)
    found = session.execute(
        select(col(Complaint.tracking_id))
        .join(ComplaintEvent, col(ComplaintEvent.tracking_id) == col(Complaint.tracking_id))
        .where(
            col(Complaint.channel) == channel,
            col(Complaint.provider) == provider,
            col(Complaint.reply_address) == reply_address,
            col(Complaint.status) == RESOLVED,
            col(ComplaintEvent.to_status) == RESOLVED,
            col(ComplaintEvent.at) >= since,
        )
        .order_by(col(ComplaintEvent.at).desc())
        .limit(1)
    ).scalar_one_or_none()
    return found


def reopen_on_follow_up(
    session: Session, config: Config, parent_tracking_id: str, follow_up: str, at: datetime
) -> Applied | None:
    """A citizen's follow-up to a complaint resolved within ``reopen_days`` reopens it (to in_progress)."""
    query = select(Complaint).where(col(Complaint.tracking_id) == parent_tracking_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()  # an admin closing it at the same moment waits, or we wait for them
    parent = session.execute(query).scalar_one_or_none()
    if parent is None or parent.status != RESOLVED:
        return None
    when = resolved_at(session, parent_tracking_id)
    if when is None or at - when > timedelta(days=config.lifecycle.reopen_days):
        return None
    change = Change(
        to=IN_PROGRESS,
        internal_note=f"dibuka kembali oleh tindak lanjut pelapor {follow_up}",
        source="channel",
        dedupe_key=f"reopen:{follow_up}",
        at=at,
    )
    return apply(session, config, parent, change, Actor("citizen", "pelapor"))


# ---- STATUS --------------------------------------------------------------------------------------


def status_reply(session: Session, config: Config, complaint: Complaint) -> str:
    """What ``STATUS <id>`` answers: the current step, the agency it is with, the latest public note."""
    replies = config.replies
    status_text = replies.status_texts.get(complaint.status, complaint.status)
    text = replies.status.format(tracking_id=complaint.tracking_id, status=complaint.status, status_text=status_text)
    if complaint.agency:
        text += replies.status_agency.format(agency_name=agency_name(config, complaint.agency))
    note = latest_public_note(session, complaint.tracking_id)
    if note:
        text += replies.status_note.format(public_note=note)
    return fit(text, complaint.channel)


# ---- listings ------------------------------------------------------------------------------------


def overdue_counts(store: Store, now: datetime | None = None) -> dict[tuple[str, str], int]:
    """(status, agency or "-") -> open complaints past their due date, for /metrics."""
    with store.read() as session:
        rows = session.execute(
            select(col(Complaint.status), col(Complaint.agency), func.count())
            .where(col(Complaint.due_at) < (now or utcnow()), col(Complaint.status).not_in(FINAL))
            .group_by(col(Complaint.status), col(Complaint.agency))
        ).all()
    return {(status, agency or "-"): int(count) for status, agency, count in rows}


def queue_order(query: Any, now: datetime) -> Any:
    """Overdue first, then urgent, then oldest: the order staff work a queue in."""
    order: list[Any] = [case((col(Complaint.due_at) < now, 0), else_=1)]
    priority = getattr(Complaint, "priority", None)
    if priority is not None:
        order.append(case((priority == "urgent", 0), else_=1))
    return query.order_by(*order, col(Complaint.received_at), col(Complaint.id))
