"""Instagram messages (a professional account's DMs): registry name ``instagram``, provider ``instagram``.

Meta posts signed notifications (object ``instagram``) to
``/webhooks/instagram`` with the same handshake and ``X-Hub-Signature-256``
as WhatsApp (``channels.meta``); events are read by
``channels.meta.messaging``. What is Instagram's own is here: a story that
mentions the account is a photo to keep, a shared post or reel is a link.
Replies go through the Send API within Meta's 24-hour window. Operator docs:
``docs/channels/instagram.md``.
"""

from __future__ import annotations

from channels.meta.messaging import Content, MessageAttachment, MessagingProduct, file_media, link_text
from channels.meta.settings import MetaAppSettings

WEBHOOK_PATH = "/webhooks/instagram"
# Attachment types that are a file at payload.url; a story mention is the story's picture or video.
_FILES = frozenset({"image", "video", "audio", "file", "story_mention"})
# A post or reel someone shares with us: a link, the post is not ours to copy.
_LINKS = frozenset({"share", "ig_reel", "reel", "ig_post"})


class InstagramSettings(MetaAppSettings):
    registry_name = "instagram"
    required_when_enabled = (
        ("verify_token", "set INSTAGRAM_VERIFY_TOKEN"),
        ("app_secret", "set INSTAGRAM_APP_SECRET"),
        ("access_token", "set INSTAGRAM_ACCESS_TOKEN"),
    )


def attachment(item: MessageAttachment) -> Content:
    if item.type in _FILES:
        return Content(media=file_media(item))
    if item.type in _LINKS:
        return Content(text=link_text(item))
    return Content()


PRODUCT = MessagingProduct(name="instagram", object="instagram", attachment=attachment)


ADAPTER = PRODUCT.adapter(InstagramSettings, WEBHOOK_PATH)
