"""Facebook Messenger (a Page's inbox): registry name ``messenger``, provider ``messenger``.

Meta posts signed notifications (object ``page``) to ``/webhooks/messenger``
with the same handshake and ``X-Hub-Signature-256`` as WhatsApp
(``channels.meta``); events are read by ``channels.meta.messaging``. What is
Messenger's own is here: which attachments carry a file, a place or a link.
Replies go through the Send API within Meta's 24-hour window. Operator docs:
``docs/channels/messenger.md``.
"""

from __future__ import annotations

from channels.meta.messaging import Content, MessageAttachment, MessagingProduct, file_media, link_text, place
from channels.meta.settings import MetaAppSettings

WEBHOOK_PATH = "/webhooks/messenger"
# Attachment types that are a file at payload.url.
_FILES = frozenset({"image", "video", "audio", "file"})


class MessengerSettings(MetaAppSettings):
    registry_name = "messenger"
    required_when_enabled = (
        ("verify_token", "set MESSENGER_VERIFY_TOKEN"),
        ("app_secret", "set MESSENGER_APP_SECRET"),
        ("access_token", "set MESSENGER_PAGE_ACCESS_TOKEN"),
    )


def attachment(item: MessageAttachment) -> Content:
    """Messenger's attachments: files; a sticker (an image with ``sticker_id``) is no complaint; links as text."""
    if item.payload is not None and item.payload.sticker_id is not None:
        return Content()
    if item.type in _FILES:
        return Content(media=file_media(item))
    if item.type == "location":
        return Content(location=place(item))
    if item.type == "fallback":
        return Content(text=link_text(item))
    return Content()


PRODUCT = MessagingProduct(name="messenger", object="page", attachment=attachment)


ADAPTER = PRODUCT.adapter(MessengerSettings, WEBHOOK_PATH)
