"""ChannelMessage -> what the gateway should do with it.

A citizen's message is one of three things: a new complaint (or a follow-up
that quotes an earlier tracking id), a ``STATUS <id>`` question, or something
we cannot act on (empty, the keyword alone) that deserves a help text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from normalizer.phone import to_e164
from normalizer.privacy import mask_body
from normalizer.text import clean_optional, clean_text
from normalizer.tracking import canonical_tracking_id, quoted_tracking_id
from normalizer.types import ChannelMessage, ComplaintRecord, Kind, Location, Reporter
from normalizer.understand import Understanding, apply, read

DEFAULT_KEYWORDS: tuple[str, ...] = ("LAPOR", "LPR")
_STATUS = re.compile(r"^\s*/?STATUS\b[\s:#.-]*(.*)$", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class NewComplaint:
    record: ComplaintRecord


@dataclass(frozen=True)
class StatusQuery:
    tracking_id: str | None  # None: the citizen asked without a usable id


@dataclass(frozen=True)
class NeedsHelp:
    reason: str


Outcome = NewComplaint | StatusQuery | NeedsHelp


def strip_keyword(text: str, keywords: Sequence[str] = DEFAULT_KEYWORDS) -> str:
    """Drop a leading ``LAPOR``, ``lapor:``, ``Lapor#``, ``LPR`` and the spaces after it.

    ``LPR-7K3Q9X …`` is a quoted tracking id, not the keyword: it is kept.
    """
    for keyword in sorted(keywords, key=len, reverse=True):
        match = re.match(rf"^\s*{re.escape(keyword)}(?![-\w])[\s:#.,;!-]*", text, re.IGNORECASE)
        if match:
            return text[match.end() :]
    return text


def _reporter(msg: ChannelMessage) -> Reporter:
    if msg.anonymity == "anonymous":
        return Reporter(anonymity="anonymous")
    return Reporter(
        name=clean_optional(msg.sender_name),
        phone=to_e164(msg.sender_phone),
        email=(msg.sender_email or "").strip().lower() or None,
        telegram_id=msg.sender_telegram_id,
        anonymity=msg.anonymity,
    )


def _location(location: Location | None) -> Location | None:
    if location is None:
        return None
    cleaned = Location(
        text=clean_optional(location.text),
        lat=location.lat,
        lon=location.lon,
        region_code=location.region_code,
        region_name=clean_optional(location.region_name),
    )
    return None if cleaned == Location() else cleaned


def to_record(
    msg: ChannelMessage,
    body: str,
    received_at: datetime,
    parent: str | None,
    understanding: Understanding | None = None,
) -> ComplaintRecord:
    kind: Kind = msg.kind or "complaint"
    subject = clean_optional(msg.subject)
    location = _location(msg.location)
    if msg.anonymity == "anonymous":
        # An anonymous reporter's number or NIK written in the text would undo the anonymity.
        body = mask_body(body)
        subject = mask_body(subject) if subject else None
        if location is not None and location.text:
            location = replace(location, text=mask_body(location.text))
    record = ComplaintRecord(
        kind=kind,
        channel=msg.channel,
        provider=msg.provider,
        source=msg.source,
        external_id=msg.external_id,
        received_at=received_at,
        reporter=_reporter(msg),
        subject=subject,
        body=body,
        category=msg.category,
        location=location,
        attachments=msg.attachments,
        parent_tracking_id=parent,
        entered_by=msg.entered_by,
    )
    if understanding is None:
        return record
    location_text = record.location.text if record.location else None
    text = "\n".join(part for part in (record.subject, body, location_text) if part)
    return apply(record, read(text, understanding), msg.category, msg.kind, understanding.regions)


def normalize(
    msg: ChannelMessage,
    received_at: datetime,
    keywords: Sequence[str] = DEFAULT_KEYWORDS,
    understanding: Understanding | None = None,
) -> Outcome:
    """Decide what a message is and, for a complaint, build its record.

    With ``understanding`` (models loaded at start) the record also gets its category, kind,
    region, priority and the ``auto`` explanation; without it those stay as the channel gave them.
    """
    text = clean_text(msg.text)
    if not msg.detect_intent:
        return NewComplaint(to_record(msg, text, received_at, msg.parent_tracking_id, understanding))

    status = _STATUS.match(text)
    if status:
        return StatusQuery(canonical_tracking_id(status.group(1).split()[0]) if status.group(1).split() else None)

    body = clean_text(strip_keyword(text, keywords))
    if not body and not msg.attachments and not msg.pending_media and msg.location is None:
        return NeedsHelp("empty" if not text else "keyword_only")
    parent = msg.parent_tracking_id or quoted_tracking_id(body)
    return NewComplaint(to_record(msg, body, received_at, parent, understanding))
