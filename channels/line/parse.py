"""Pure functions over a stored LINE webhook body: row keys and messages.

One webhook body can carry several events; the edge stores one inbox row per
event (key: its ``webhookEventId``, which a redelivery repeats), each keeping
the whole signed body as raw bytes and naming its event in ``meta``. The
events are read with line-bot-sdk's own models (``Event.from_dict``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from linebot.v3.webhooks import Event, FollowEvent, MessageEvent

from channels.base import InboxItem
from normalizer.errors import IgnoredMessage, PayloadError
from normalizer.types import ChannelMessage, Location

CHANNEL: Final = "line"
PROVIDER = "line"
SIGNATURE_HEADER = "X-Line-Signature"

_MEDIA_TYPES = ("image", "video", "audio", "file")
# Events that are a citizen talking to us; everything else (unfollow, join, leave, unsend,
# postback, beacon, ...) is kept for provenance and never processed.
_HANDLED = ("message", "follow")


def load_events(raw: bytes) -> list[dict[str, Any]]:
    """The ``events[]`` of a webhook body; ``PayloadError`` naming what is wrong."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(f"line webhook body is not JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("events"), list):
        raise PayloadError("line webhook body has no events list")
    events: list[dict[str, Any]] = []
    for index, event in enumerate(data["events"]):
        if not isinstance(event, dict) or not isinstance(event.get("webhookEventId"), str):
            raise PayloadError(f"line webhook events[{index}] has no webhookEventId")
        events.append(event)
    return events


def inbox_items(raw: bytes, headers: Mapping[str, str] | None = None) -> list[InboxItem]:
    """One row per event; an empty ``events`` (LINE's connection check) makes none."""
    kept = dict(headers or {})
    items: list[InboxItem] = []
    for event in load_events(raw):
        kind = str(event.get("type", ""))
        items.append(
            InboxItem(
                channel=CHANNEL,
                provider=PROVIDER,
                external_id=event["webhookEventId"],
                raw=raw,
                headers=kept,
                meta={
                    "event_id": event["webhookEventId"],
                    "type": kind,
                    "redelivery": bool((event.get("deliveryContext") or {}).get("isRedelivery")),
                },
                ignored_reason=None if kind in _HANDLED else f"line {kind or 'unknown'} event, not a message",
            )
        )
    return items


def external_id(raw: bytes, meta: Mapping[str, Any]) -> str:
    if meta.get("event_id"):
        return str(meta["event_id"])
    events = load_events(raw)
    if len(events) != 1:
        raise PayloadError("line webhook body with several events needs meta.event_id")
    return str(events[0]["webhookEventId"])


def parse(raw: bytes, meta: Mapping[str, Any]) -> list[ChannelMessage]:
    """The message of the row's event (or of every event, for a row built by hand)."""
    wanted = meta.get("event_id")
    found: list[ChannelMessage] = []
    for event in load_events(raw):
        if wanted is not None and event["webhookEventId"] != wanted:
            continue
        message = to_channel_message(_model(event), part=len(found))
        if message is not None:
            found.append(message)
        elif wanted is not None:
            raise IgnoredMessage(f"line {event.get('type')} event, not a message")
    if not found:
        if wanted is not None:
            raise PayloadError(f"line webhook body does not contain event {wanted}")
        raise IgnoredMessage("line webhook body without messages")
    return found


def _model(event: dict[str, Any]) -> Any:
    try:
        return Event.from_dict(event)
    except (ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PayloadError(f"line {event.get('type')} event {event['webhookEventId']} is malformed: {first}") from exc


def _address(source: Any) -> str | None:
    """Where a push goes: the user, or the group or room the message came from."""
    if source is None:
        return None
    for name in ("user_id", "group_id", "room_id"):
        value = getattr(source, name, None)
        if value:
            return str(value)
    return None


def to_channel_message(event: Any, part: int) -> ChannelMessage | None:
    reply_to = _address(event.source)
    extra: dict[str, Any] = {
        "type": event.type,
        "line_event_at_ms": event.timestamp,
        "line_reply_token": getattr(event, "reply_token", None),
        "line_user_id": getattr(event.source, "user_id", None),
    }
    if isinstance(event, FollowEvent):
        # Someone added the account (or unblocked it): a greeting, never a complaint.
        extra["greeting"] = True
        return ChannelMessage(
            channel=CHANNEL,
            provider=PROVIDER,
            external_id=event.webhook_event_id,
            text="",
            part=part,
            reply_to=reply_to,
            extra=extra,
        )
    if not isinstance(event, MessageEvent):
        return None
    content = event.message
    extra["line_message_id"] = content.id
    quoted = getattr(content, "quoted_message_id", None)
    if quoted:
        extra["reply_references"] = [quoted]  # the citizen quoted one of our messages (e.g. the ack)
    text, location = "", None
    media: tuple[dict[str, Any], ...] = ()
    if content.type == "text":
        text = content.text
    elif content.type in _MEDIA_TYPES:
        provider = getattr(content, "content_provider", None)
        if provider is None or provider.type == "line":
            media = ({"id": content.id, "kind": content.type, "filename": getattr(content, "file_name", None)},)
        else:
            # Sent through another app: LINE does not hold the bytes; the link is kept, not fetched.
            extra["external_media_url"] = provider.original_content_url
    elif content.type == "location":
        label = ", ".join(part for part in (content.title, content.address) if part) or None
        location = Location(text=label, lat=float(content.latitude), lon=float(content.longitude))
    else:
        # Stickers and unknown types: an empty text, answered with the help text.
        extra["unsupported"] = True
    return ChannelMessage(
        channel=CHANNEL,
        provider=PROVIDER,
        external_id=content.id,
        text=text,
        part=part,
        location=location,
        # Fetched by a media job of its own once the complaint is stored and acknowledged.
        pending_media=media,
        reply_to=reply_to,
        extra=extra,
    )
