"""Pure functions over a stored notification: keys, messages, receipts.

One notification can carry several messages and several statuses, and Meta
may batch a retry differently from the first delivery. So the edge stores one
inbox row per *message* (key: its wamid; a wamid repeated inside one
notification is one row) and one per *status* (key: the message id and the
state it reports). A row keeps the notification cut down to its one item
(``channels.meta.notification``), and ``meta`` says which item it stands for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from pydantic import ValidationError

from channels.base import InboxItem, Receipt
from channels.meta.notification import cut_down, digest, entries, load_object, provenance
from channels.meta.signature import SIGNATURE_HEADER as SIGNATURE_HEADER
from channels.meta.window import MESSAGE_TIME_KEY, received_now
from channels.whatsapp.wire import Contact, Message, Notification, SharedContact, Status, Value
from normalizer.errors import IgnoredMessage, PayloadError
from normalizer.phone import to_e164
from normalizer.types import ChannelMessage, Location

CHANNEL: Final = "whatsapp"
PROVIDER = "meta"

# Not something a citizen wrote to us: an emoji reaction to one of our
# messages, or a system notice (the user changed number).
_NOT_A_MESSAGE = frozenset({"reaction", "system", "ephemeral"})
_MEDIA_TYPES = ("image", "video", "audio", "document")


def load_notification(raw: bytes) -> Notification:
    """The notification in ``raw``; ``PayloadError`` naming what is wrong."""
    # Unreadable, not a dict, or nested past any sane depth: load_object says which.
    data = load_object(raw, CHANNEL)
    try:
        return Notification.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise PayloadError(f"whatsapp notification has a bad {where}: {first['msg']}") from exc


def status_key(status: Status) -> str:
    return f"status:{status.id}:{status.status}"


def inbox_items(raw: bytes) -> list[InboxItem]:
    """The inbox rows a (verified) notification becomes; ``PayloadError`` when malformed.

    One row per distinct wamid and per distinct status; each keeps only its own item.
    """
    load_notification(raw)  # validated: the dicts below have the shapes the models checked
    data = load_object(raw, CHANNEL)
    found: list[tuple[str, dict[str, Any], bytes]] = []
    seen: set[str] = set()
    for entry in entries(data):
        for change in entry.get("changes") or []:
            value = change.get("value") or {}
            for message in value.get("messages") or []:
                key = str(message["id"])
                if key not in seen:
                    seen.add(key)
                    found.append((key, {"wamid": key}, _one(data, entry, change, value, "messages", message)))
            for status in value.get("statuses") or []:
                key = f"status:{status['id']}:{status['status']}"
                if key not in seen:
                    seen.add(key)
                    meta = {"status_id": status["id"], "status": status["status"]}
                    found.append((key, meta, _one(data, entry, change, value, "statuses", status)))
    if not found:
        # Another webhook field (account or template updates): kept for
        # provenance, never processed.
        return [
            InboxItem(
                channel=CHANNEL,
                provider=PROVIDER,
                external_id=f"notification:{digest(raw)}",
                raw=raw,
                ignored_reason="whatsapp notification without messages or statuses",
            )
        ]
    received = received_now()
    if len(found) == 1:  # the notification is this one item: kept byte for byte
        key, meta, _ = found[0]
        return [_item(key, raw, {**meta, **received})]
    return [_item(key, one, {**meta, **received, **provenance(raw)}) for key, meta, one in found]


def _one(
    data: Mapping[str, Any],
    entry: Mapping[str, Any],
    change: Mapping[str, Any],
    value: Mapping[str, Any],
    key: str,
    item: Mapping[str, Any],
) -> bytes:
    """The notification cut down to one message (with its sender's contact) or one status."""
    kept = {name: part for name, part in value.items() if name not in ("messages", "statuses", "contacts")}
    kept[key] = [item]
    if key == "messages":
        sender = {item.get("from"), item.get("from_user_id")} - {None}
        contacts = [c for c in value.get("contacts") or [] if {c.get("wa_id"), c.get("user_id")} & sender]
        kept["contacts"] = contacts or list(value.get("contacts") or [])[:1]
    return cut_down(data, entry, "changes", [{**change, "value": kept}])


def _item(external_id: str, raw: bytes, meta: Mapping[str, Any]) -> InboxItem:
    return InboxItem(channel=CHANNEL, provider=PROVIDER, external_id=external_id, raw=raw, meta=meta)


def external_id(raw: bytes, meta: Mapping[str, Any]) -> str:
    """The row key: the wamid, the status key, or a digest of the body."""
    if meta.get("wamid"):
        return str(meta["wamid"])
    if meta.get("status_id"):
        return f"status:{meta['status_id']}:{meta.get('status', '')}"
    return f"notification:{digest(raw)}"


def parse(raw: bytes, meta: Mapping[str, Any]) -> list[ChannelMessage]:
    """The citizen message(s) of one inbox row.

    With ``meta["wamid"]`` (what the edge stores) exactly that message; without
    it (a row built by hand) every message of the notification, numbered by
    ``part``.
    """
    notification = load_notification(raw)
    if meta.get("status_id"):
        raise IgnoredMessage("whatsapp delivery status, not a citizen message")
    wanted = meta.get("wamid")
    found: list[ChannelMessage] = []
    seen: set[str] = set()
    for value in notification.values():
        for message in value.messages:
            if (wanted is not None and message.id != wanted) or message.id in seen:
                continue  # a wamid repeated inside one notification is one message
            seen.add(message.id)
            if message.type in _NOT_A_MESSAGE:
                if wanted is not None:
                    raise IgnoredMessage(f"whatsapp {message.type} message, not a complaint")
                continue
            found.append(to_channel_message(message, value, part=len(found), received_ms=meta.get(MESSAGE_TIME_KEY)))
    if wanted is not None and not found:
        raise PayloadError(f"whatsapp notification does not contain message {wanted}")
    if not found:
        raise IgnoredMessage("whatsapp notification without citizen messages")
    return found


def receipts(raw: bytes, meta: Mapping[str, Any]) -> list[Receipt]:
    """Statuses of replies we sent, for the outbox; only the one a status row stands for.

    A message row (``meta["wamid"]``) reports none: the statuses batched with
    it have rows of their own.
    """
    if meta.get("wamid"):
        return []
    notification = load_notification(raw)
    wanted = (meta.get("status_id"), meta.get("status")) if meta.get("status_id") else None
    found: list[Receipt] = []
    for value in notification.values():
        for status in value.statuses:
            if wanted is not None and (status.id, status.status) != wanted:
                continue
            error = "; ".join(filter(None, (e.title or e.message for e in status.errors))) or None
            found.append(Receipt(provider_message_id=status.id, status=status.status, error=error))
    return found


def _sender(message: Message, contacts: list[Contact]) -> Contact | None:
    """The ``contacts[]`` entry of the message's sender (one per sender in a change)."""
    for contact in contacts:
        if message.from_ is not None and contact.wa_id == message.from_:
            return contact
        if message.from_user_id is not None and contact.user_id == message.from_user_id:
            return contact
    return contacts[0] if len(contacts) == 1 else None


def to_channel_message(message: Message, value: Value, part: int, received_ms: Any = None) -> ChannelMessage:
    contact = _sender(message, value.contacts)
    wa_id = message.from_ or (contact.wa_id if contact else None)
    user_id = message.from_user_id or (contact.user_id if contact else None)
    # A wa_id is a phone number in digits; anything else is a business-scoped id.
    phone = to_e164("+" + wa_id) if wa_id and wa_id.isdigit() else None
    extra: dict[str, Any] = {"wamid": message.id, "type": message.type}
    if isinstance(received_ms, int):
        extra[MESSAGE_TIME_KEY] = received_ms  # for the 24-hour reply window
    if user_id:
        extra["whatsapp_user_id"] = user_id
    if message.context and message.context.id:
        extra["reply_references"] = [message.context.id]
    text, location = _content(message, extra)
    media = tuple(extra.pop("media", ()))
    return ChannelMessage(
        channel=CHANNEL,
        provider=PROVIDER,
        external_id=message.id,
        text=text,
        part=part,
        sender_name=contact.profile.name if contact and contact.profile else None,
        sender_phone=phone,
        location=location,
        reply_to=wa_id or user_id,
        pending_media=media,
        extra=extra,
    )


def _content(message: Message, extra: dict[str, Any]) -> tuple[str, Location | None]:
    """Text and location of a message; media (to fetch later) and shared contacts go into ``extra``."""
    if message.type == "text" and message.text is not None:
        return message.text.body, None
    if message.type in _MEDIA_TYPES:
        media = getattr(message, message.type)
        if media is not None:
            extra["media"] = [
                {
                    "id": media.id,
                    "kind": message.type,
                    "mime_type": media.mime_type,
                    "filename": media.filename,
                    "sha256": media.sha256,
                }
            ]
            return media.caption or "", None
    if message.type == "location" and message.location is not None:
        place = message.location
        label = ", ".join(part for part in (place.name, place.address) if part) or None
        return "", Location(text=label, lat=place.latitude, lon=place.longitude)
    if message.type == "contacts" and message.contacts:
        extra["shared_contacts"] = [_shared_contact(shared) for shared in message.contacts]
        return "Kontak: " + "; ".join(_contact_line(shared) for shared in message.contacts), None
    if message.type == "interactive" and message.interactive is not None:
        choice = message.interactive.button_reply or message.interactive.list_reply
        if choice is not None:
            extra["choice_id"] = choice.id
            return choice.title or "", None
    if message.type == "button" and message.button is not None:
        extra["choice_id"] = message.button.payload
        return message.button.text or "", None
    # Stickers, unsupported and unknown types: an empty text, answered with help.
    extra["unsupported"] = True
    return "", None


def _shared_contact(shared: SharedContact) -> dict[str, Any]:
    return {
        "name": shared.name.formatted_name if shared.name else None,
        "phones": [to_e164(phone.phone) or phone.phone for phone in shared.phones if phone.phone],
    }


def _contact_line(shared: SharedContact) -> str:
    described = _shared_contact(shared)
    return " ".join(part for part in (described["name"], *described["phones"]) if part)
