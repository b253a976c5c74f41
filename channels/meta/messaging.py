"""The Messenger Platform's ``entry[].messaging[]`` events, shared by Messenger (object ``page``)
and Instagram messaging (object ``instagram``).

Both products post the same event shapes: ``sender``/``recipient`` ids, a
``message`` (``mid``, ``text``, ``attachments[]``, ``quick_reply``,
``reply_to``, ``is_echo``), a ``postback``, ``delivery`` and ``read``
receipts, reactions. What differs (which attachment types carry a file, a
place or a link) is each product's ``Content`` rule, in its own module
(``channels/messenger.py``, ``channels/instagram.py``).

Rows: one per message ``mid`` (a ``mid`` repeated in a notification or a
retry is one row), one per postback, one per delivery receipt (which updates
the outbox); echoes of what the page sent, reads without a ``mid`` and
anything else are kept as ignored rows. Each row keeps the notification cut
down to its one event (``channels.meta.notification``).
"""

from __future__ import annotations

import json
import mimetypes
import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from channels.base import ChannelAdapter, ChannelContext, InboxItem, Receipt, Reply, Sent
from channels.meta.graph import download, graph_call
from channels.meta.notification import cut_down, digest, entries, load_object, provenance
from channels.meta.settings import MetaAppSettings
from channels.meta.webhook import meta_router
from channels.meta.window import MESSAGE_TIME_KEY, check_window, received_now
from normalizer.errors import IgnoredMessage, PayloadError, ProviderError
from normalizer.types import Attachment, ChannelMessage, ChannelName, Location


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Party(_Wire):
    id: str


class AttachmentPayload(_Wire):
    url: str | None = None
    title: str | None = None
    sticker_id: int | None = None
    coordinates: dict[str, float] | None = None


class MessageAttachment(_Wire):
    type: str = "unknown"
    payload: AttachmentPayload | None = None


class QuickReply(_Wire):
    payload: str | None = None


class ReplyTo(_Wire):
    mid: str | None = None
    story: dict[str, Any] | None = None


class MessageBody(_Wire):
    mid: str
    text: str | None = None
    is_echo: bool = False
    is_deleted: bool = False
    is_unsupported: bool = False
    quick_reply: QuickReply | None = None
    reply_to: ReplyTo | None = None
    attachments: list[MessageAttachment] = Field(default_factory=list)


class Postback(_Wire):
    mid: str | None = None
    title: str | None = None
    payload: str | None = None


class Delivery(_Wire):
    mids: list[str] = Field(default_factory=list)
    watermark: int | None = None


class Read(_Wire):
    mid: str | None = None  # Instagram names the message read
    watermark: int | None = None  # Messenger says "everything up to then"


class Event(_Wire):
    sender: Party
    recipient: Party
    timestamp: int | None = None
    message: MessageBody | None = None
    postback: Postback | None = None
    delivery: Delivery | None = None
    read: Read | None = None


class Entry(_Wire):
    id: str | None = None
    time: int | None = None
    messaging: list[Event] = Field(default_factory=list)


class Notification(_Wire):
    object: str | None = None
    entry: list[Entry] = Field(default_factory=list)


@dataclass(frozen=True)
class Content:
    """What one attachment contributes: a file to fetch, a line of text, a place, or nothing a complaint needs."""

    media: dict[str, Any] | None = None
    text: str | None = None
    location: Location | None = None


# A product's reading of one attachment (the part of parsing that differs between products).
AttachmentRule = Callable[[MessageAttachment], Content]


@dataclass(frozen=True)
class MessagingProduct:
    """One Meta product on the Messenger Platform."""

    name: ChannelName  # the channel and provider name, and the word in log lines and errors
    object: str  # the notification's ``object``
    attachment: AttachmentRule

    def adapter(self, settings: type[MetaAppSettings], path: str) -> ChannelAdapter:
        """The product as the registry lists it: its webhook at ``path``, everything else from here."""

        def router(configured: MetaAppSettings, ctx: ChannelContext) -> APIRouter:
            return meta_router(path, self.name, configured, ctx, self.inbox_items)

        return ChannelAdapter(
            name=self.name,
            provider=self.name,
            settings=settings,
            parse=self.parse,
            external_id=self.external_id,
            send=self.send,
            router=router,
            receipts=self.receipts,
            fetch_media=self.fetch_media,
        )

    # ---- edge --------------------------------------------------------------------------------

    def load(self, raw: bytes) -> tuple[dict[str, Any], Notification]:
        data = load_object(raw, self.name)
        try:
            notification = Notification.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise PayloadError(f"{self.name} notification has a bad {where}: {first['msg']}") from exc
        if notification.object != self.object:
            raise PayloadError(f"{self.name} notification is for object {notification.object!r}, not {self.object!r}")
        return data, notification

    def inbox_items(self, raw: bytes) -> list[InboxItem]:
        """The rows a (verified) notification becomes; ``PayloadError`` when malformed."""
        data, _ = self.load(raw)
        found: dict[str, tuple[dict[str, Any], bytes, str | None]] = {}
        for entry in entries(data):
            for event in entry.get("messaging") or []:
                key, ignored = self._key(Event.model_validate(event))
                if key not in found:
                    found[key] = ({"event_key": key}, cut_down(data, entry, "messaging", [event]), ignored)
        received = received_now()
        if not found:
            return [self._item(f"notification:{digest(raw)}", raw, {}, f"{self.name} notification without events")]
        if len(found) == 1:  # the notification is this one event: kept byte for byte
            [(key, (meta, _, ignored))] = found.items()
            return [self._item(key, raw, {**meta, **received}, ignored)]
        return [
            self._item(key, one, {**meta, **received, **provenance(raw)}, ignored)
            for key, (meta, one, ignored) in found.items()
        ]

    def _item(self, key: str, raw: bytes, meta: Mapping[str, Any], ignored: str | None) -> InboxItem:
        return InboxItem(
            channel=self.name, provider=self.name, external_id=key, raw=raw, meta=meta, ignored_reason=ignored
        )

    def _key(self, event: Event) -> tuple[str, str | None]:
        """The row key of an event, and why it is kept only for provenance (None: the worker reads it)."""
        if event.message is not None:
            if event.message.is_echo:
                return f"echo:{event.message.mid}", f"{self.name} echo of a message the page sent"
            return event.message.mid, None
        if event.postback is not None:
            return event.postback.mid or f"postback:{event.sender.id}:{event.timestamp}", None
        if event.delivery is not None:
            material = json.dumps(event.delivery.model_dump(mode="json"), sort_keys=True).encode()
            return f"delivery:{event.sender.id}:{digest(material)}", None
        if event.read is not None and event.read.mid:
            return f"read:{event.read.mid}", None
        material = json.dumps(event.model_dump(mode="json"), sort_keys=True).encode()
        return f"event:{digest(material)}", f"{self.name} event that is neither a message nor a receipt"

    def external_id(self, raw: bytes, meta: Mapping[str, Any]) -> str:
        if meta.get("event_key"):
            return str(meta["event_key"])
        return f"notification:{digest(raw)}"

    # ---- worker ------------------------------------------------------------------------------

    def _events(self, raw: bytes, meta: Mapping[str, Any]) -> list[Event]:
        _, notification = self.load(raw)
        wanted = meta.get("event_key")
        events = [event for entry in notification.entry for event in entry.messaging]
        if wanted is None:
            return events
        chosen = [event for event in events if self._key(event)[0] == wanted][:1]
        if not chosen:
            raise PayloadError(f"{self.name} notification does not contain event {wanted}")
        return chosen

    def parse(self, raw: bytes, meta: Mapping[str, Any]) -> list[ChannelMessage]:
        """The citizen's message (or postback) of one row; receipts and echoes are ``IgnoredMessage``."""
        found: list[ChannelMessage] = []
        seen: set[str] = set()
        for event in self._events(raw, meta):
            key, ignored = self._key(event)
            if ignored or key in seen or (event.message is None and event.postback is None):
                continue
            seen.add(key)
            if event.message is not None and event.message.is_deleted:
                continue  # the person unsent it: nothing to make a complaint of
            found.append(self._message(event, key, len(found), meta.get(MESSAGE_TIME_KEY)))
        if not found:
            raise IgnoredMessage(f"{self.name} receipt, echo or unsent message, not a complaint")
        return found

    def _message(self, event: Event, key: str, part: int, received_ms: Any) -> ChannelMessage:
        extra: dict[str, Any] = {f"{self.name}_user_id": event.sender.id, "mid": key}
        if isinstance(received_ms, int):
            extra[MESSAGE_TIME_KEY] = received_ms  # for the 24-hour reply window
        texts: list[str] = []
        media: list[dict[str, Any]] = []
        location: Location | None = None
        if event.postback is not None:
            # A button the person pressed: its title is what they "said", its payload what it means.
            texts.append(event.postback.title or event.postback.payload or "")
            extra["choice_id"] = event.postback.payload
        elif event.message is not None:
            message = event.message
            texts.append(message.text or "")
            if message.quick_reply is not None:
                extra["choice_id"] = message.quick_reply.payload
            if message.reply_to is not None and message.reply_to.mid:
                extra["reply_references"] = [message.reply_to.mid]  # answering one of our messages
            if message.reply_to is not None and message.reply_to.story:
                extra["story"] = message.reply_to.story
            for attachment in message.attachments:
                content = self.attachment(attachment)
                if content.media is not None:
                    media.append({**content.media, "position": len(media), "mid": key})
                if content.text:
                    texts.append(content.text)
                location = location or content.location
            if message.is_unsupported or (message.attachments and not (media or location or any(texts))):
                extra["unsupported"] = True  # a sticker, a reaction-only message: answered with help
        return ChannelMessage(
            channel=self.name,
            provider=self.name,
            external_id=key,
            text="\n".join(text for text in texts if text),
            part=part,
            location=location,
            reply_to=event.sender.id,
            pending_media=tuple(media),
            extra=extra,
        )

    def receipts(self, raw: bytes, meta: Mapping[str, Any]) -> list[Receipt]:
        """Delivery (Messenger) and read (Instagram) receipts of replies we sent, for the outbox."""
        found: list[Receipt] = []
        for event in self._events(raw, meta):
            if event.delivery is not None:
                found.extend(Receipt(provider_message_id=mid, status="delivered") for mid in event.delivery.mids)
            if event.read is not None and event.read.mid:
                found.append(Receipt(provider_message_id=event.read.mid, status="read"))
        return found

    # ---- outbox and media jobs ---------------------------------------------------------------

    async def send(self, reply: Reply, settings: MetaAppSettings, client: httpx.AsyncClient) -> Sent:
        """The Send API: ``POST /{version}/me/messages``, ``messaging_type: RESPONSE``, inside the 24-hour window."""
        check_window(reply.extra, datetime.now(UTC), self.name)
        body = {"recipient": {"id": reply.to}, "messaging_type": "RESPONSE", "message": {"text": reply.text}}
        token = settings.access_token.get_secret_value()
        response = await graph_call(client, "POST", settings.graph_url("me/messages"), token, self.name, body)
        try:
            message_id = str(response.json()["message_id"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ProviderError(f"{self.name}: Send API answered without message_id") from exc
        return Sent(provider_message_id=message_id)

    async def fetch_media(self, media: Mapping[str, Any], settings: MetaAppSettings, ctx: ChannelContext) -> Attachment:
        """An attachment's ``payload.url``: a signed CDN URL, fetched without any of our credentials."""
        url = str(media["url"])
        fetched = await download(ctx, url, settings, credential_hosts=())
        content_type = fetched.content_type or media.get("mime_type")
        return ctx.save_attachment(fetched.data, _filename(url, media, content_type, self.name), content_type)


def _filename(url: str, media: Mapping[str, Any], content_type: str | None, product: str) -> str:
    name = posixpath.basename(httpx.URL(url).path)
    if name and "." in name:
        return name
    extension = mimetypes.guess_extension((content_type or "").split(";")[0].strip()) or ""
    return f"{product}-{media.get('mid', 'media')}-{media.get('position', 0)}{extension}"


def file_media(attachment: MessageAttachment) -> dict[str, Any] | None:
    """The descriptor of an attachment that is a file at ``payload.url``."""
    if attachment.payload is None or not attachment.payload.url:
        return None
    return {"url": attachment.payload.url, "kind": attachment.type}


def link_text(attachment: MessageAttachment) -> str | None:
    """A shared link (a post, a reel, a web page) as a line of text: its title and URL."""
    if attachment.payload is None or not attachment.payload.url:
        return None
    return " ".join(part for part in (attachment.payload.title, attachment.payload.url) if part)


def place(attachment: MessageAttachment) -> Location | None:
    """A shared location (``payload.coordinates.lat``/``long``), where a product still sends one."""
    coordinates = attachment.payload.coordinates if attachment.payload else None
    if not coordinates or "lat" not in coordinates or "long" not in coordinates:
        return None
    title = attachment.payload.title if attachment.payload else None
    return Location(text=title, lat=coordinates["lat"], lon=coordinates["long"])
