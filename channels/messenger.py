"""Facebook Messenger (a Page's inbox): registry name ``messenger``, provider ``messenger``.

Meta posts signed notifications (object ``page``) to ``/webhooks/messenger``
with the same handshake and ``X-Hub-Signature-256`` as WhatsApp
(``channels.meta``); events are read by ``channels.meta.messaging``. What is
Messenger's own is here: which attachments carry a file, a place or a link.
Replies go through the Send API within Meta's 24-hour window. Operator docs:
``docs/channels/messenger.md``.
"""

from __future__ import annotations

from fastapi import APIRouter

from channels.base import ChannelAdapter, ChannelContext
from channels.meta.messaging import Content, MessageAttachment, MessagingProduct, file_media, place
from channels.meta.settings import MetaAppSettings
from channels.meta.webhook import meta_router

WEBHOOK_PATH = "/webhooks/messenger"
# Attachment types that are a file at payload.url.
_FILES = frozenset({"image", "video", "audio", "file"})


class MessengerSettings(MetaAppSettings):
    registry_name = "messenger"
    required_when_enabled = (
        ("verify_token", "MESSENGER_VERIFY_TOKEN"),
        ("app_secret", "MESSENGER_APP_SECRET"),
        ("access_token", "MESSENGER_PAGE_ACCESS_TOKEN"),
    )


def attachment(item: MessageAttachment) -> Content:
    """Messenger's attachments: files; a sticker (an image with ``sticker_id``) is no complaint; links as text."""
    if item.payload is not None and item.payload.sticker_id is not None:
        return Content()
    if item.type in _FILES:
        return Content(media=file_media(item))
    if item.type == "location":
        return Content(location=place(item))
    if item.type == "fallback" and item.payload is not None and item.payload.url:
        return Content(text=" ".join(part for part in (item.payload.title, item.payload.url) if part))
    return Content()


PRODUCT = MessagingProduct(name="messenger", object="page", attachment=attachment)


def router(settings: MessengerSettings, ctx: ChannelContext) -> APIRouter:
    return meta_router(WEBHOOK_PATH, PRODUCT.name, settings, ctx, PRODUCT.inbox_items)


ADAPTER = ChannelAdapter(
    name="messenger",
    provider=PRODUCT.name,
    settings=MessengerSettings,
    parse=PRODUCT.parse,
    external_id=PRODUCT.external_id,
    send=PRODUCT.send,
    router=router,
    receipts=PRODUCT.receipts,
    fetch_media=PRODUCT.fetch_media,
)
