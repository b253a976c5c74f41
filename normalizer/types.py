"""The two shapes the normalizer works between.

A ``ChannelMessage`` is what a citizen (or a call-center agent) sent, in the
channel's own terms, as a channel's ``parse`` returns it. A ``ComplaintRecord``
is the common record (schema v1 in DESIGN.md) the store keeps. Both are plain
frozen dataclasses: no I/O, no ORM, easy to build in a table test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Kind = Literal["complaint", "aspiration", "information_request"]
Priority = Literal["normal", "urgent"]
RegionLevel = Literal["provinsi", "kabupaten", "kota", "kecamatan", "desa", "kelurahan"]
Anonymity = Literal["public", "confidential", "anonymous"]
ChannelName = Literal["sms", "whatsapp", "telegram", "email", "manual", "web", "line", "messenger", "instagram", "x"]

KINDS: tuple[str, ...] = ("complaint", "aspiration", "information_request")
ANONYMITY_LEVELS: tuple[str, ...] = ("public", "confidential", "anonymous")
MANUAL_SOURCES: tuple[str, ...] = (
    "phone",
    "walk_in",
    "instagram",
    "facebook",
    "x",
    "radio",
    "whatsapp",
    "email",
    "letter",
    "other",
)


@dataclass(frozen=True)
class Reporter:
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    telegram_id: str | None = None
    anonymity: Anonymity = "public"

    def public_view(self) -> dict[str, Any]:
        """The reporter as every export shows it: no identity when anonymous."""
        if self.anonymity == "anonymous":
            return {"name": None, "phone": None, "email": None, "telegram_id": None, "anonymity": "anonymous"}
        return {
            "name": self.name,
            "phone": self.phone,
            "email": self.email,
            "telegram_id": self.telegram_id,
            "anonymity": self.anonymity,
        }


@dataclass(frozen=True)
class Location:
    text: str | None = None
    lat: float | None = None
    lon: float | None = None
    region_code: str | None = None
    region_name: str | None = None
    region_level: str | None = None
    # (code, name) from the province down to region_code; exported as a list of {code, name}.
    region_path: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Attachment:
    filename: str | None
    content_type: str | None
    size: int
    sha256: str


@dataclass(frozen=True)
class ChannelMessage:
    """One message as a channel understood it; what ``parse`` returns.

    ``part`` numbers the messages parsed from one inbox row (a WhatsApp
    notification can carry several); with the inbox id it is the key that
    stops a replay from making a second complaint.
    """

    channel: ChannelName
    provider: str
    external_id: str
    text: str
    part: int = 0
    subject: str | None = None
    sender_name: str | None = None
    sender_phone: str | None = None
    sender_email: str | None = None
    sender_telegram_id: str | None = None
    anonymity: Anonymity = "public"
    source: str | None = None
    kind: Kind | None = None
    category: str | None = None
    location: Location | None = None
    attachments: tuple[Attachment, ...] = ()
    # Attachments still to download (a media id, a URL): the complaint is stored and
    # acknowledged without waiting; a media job per descriptor attaches each file later.
    pending_media: tuple[dict[str, Any], ...] = ()
    entered_by: str | None = None
    # A tracking id the channel already knows this message continues (e-mail
    # In-Reply-To matching our acknowledgement, a chat within its window).
    parent_tracking_id: str | None = None
    # Channels whose messages are typed by a person at our side (manual, CSV)
    # are always complaints; citizen channels go through intent detection.
    detect_intent: bool = True
    # Where a reply goes back to (a phone number, chat id, mail address...).
    reply_to: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ComplaintRecord:
    """The common complaint record, schema v1, before the store gives it a tracking id."""

    kind: Kind
    channel: ChannelName
    provider: str
    source: str | None
    external_id: str
    received_at: datetime
    reporter: Reporter
    subject: str | None
    body: str
    category: str | None
    location: Location | None
    attachments: tuple[Attachment, ...]
    parent_tracking_id: str | None
    entered_by: str | None
    status: str = "received"
    priority: Priority = "normal"
    # What the normalizer decided and why: {"category", "kind", "region", "priority": {code, confidence,
    # reasons} or None, "normalizer": version}. None when it did not run (no models loaded).
    auto: dict[str, Any] | None = None
    # Tracking ids of open complaints that look like the same problem (filled in by the worker).
    related: tuple[str, ...] = ()
