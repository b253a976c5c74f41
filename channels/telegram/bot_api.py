"""Calls to the Bot API through aiogram: replies, media downloads, webhook registration."""

from __future__ import annotations

import mimetypes
import posixpath
from collections.abc import Mapping
from typing import Any

import httpx
import structlog
from aiogram import Bot
from aiogram.types import ReplyParameters

from channels.base import ChannelContext, Reply, SaveAttachment, Sent
from channels.media import MediaRefused
from channels.telegram.handlers import message_id
from channels.telegram.session import make_bot, provider_errors
from channels.telegram.settings import TelegramSettings
from normalizer.errors import ProviderRejected
from normalizer.types import Attachment

log = structlog.get_logger(__name__)

WEBHOOK_PATH = "/webhooks/telegram"
# Only what a citizen sends; edits, reactions and group events are not complaints.
ALLOWED_UPDATES = ["message"]
WEBHOOK_REGISTERED = "telegram.webhook_registered"


async def send(reply: Reply, settings: TelegramSettings, client: httpx.AsyncClient) -> Sent:
    return await send_with_bot(make_bot(settings, client), reply)


async def send_with_bot(bot: Bot, reply: Reply) -> Sent:
    """``sendMessage`` to the chat; threaded under the citizen's message when we know it."""
    quoted = reply.extra.get("telegram_message_id")
    threading = ReplyParameters(message_id=int(quoted), allow_sending_without_reply=True) if quoted else None
    async with provider_errors("sendMessage"):
        sent = await bot.send_message(chat_id=reply.to, text=reply.text, reply_parameters=threading)
    return Sent(provider_message_id=message_id(sent.chat.id, sent.message_id))


async def fetch_media(media: Mapping[str, Any], settings: TelegramSettings, ctx: ChannelContext) -> Attachment:
    return await fetch_with_bot(media, make_bot(settings, ctx.http), ctx.save_attachment, ctx.media.max_bytes)


async def fetch_with_bot(media: Mapping[str, Any], bot: Bot, save: SaveAttachment, max_bytes: int) -> Attachment:
    """getFile then the file download, for one media descriptor ``parse`` left in ``pending_media``.

    The file URL is built from the configured ``api_base`` (never taken from a
    payload), so only the size needs a limit here: ``media.max_bytes`` by the
    sizes Telegram states and by the bytes that came. A file the Bot API will
    not serve (over its 20 MB download limit, or gone) fails the job for good;
    outages raise ``ProviderError`` so the job tries again.
    """
    stated = media.get("file_size")
    if isinstance(stated, int) and stated > max_bytes:
        raise MediaRefused(f"telegram: file of {stated} bytes is over media.max_bytes ({max_bytes})")
    async with provider_errors("getFile"):
        file = await bot.get_file(str(media["file_id"]))
        if not file.file_path:
            raise ProviderRejected("telegram: getFile gave no file_path")
        if file.file_size and file.file_size > max_bytes:
            raise MediaRefused(f"telegram: file of {file.file_size} bytes is over media.max_bytes ({max_bytes})")
        data = await bot.download_file(file.file_path)
    assert data is not None
    content = data.read()
    if len(content) > max_bytes:
        raise MediaRefused(f"telegram: file of {len(content)} bytes is over media.max_bytes ({max_bytes})")
    filename = media.get("filename") or posixpath.basename(file.file_path)
    content_type = media.get("mime_type") or mimetypes.guess_type(filename)[0]
    return save(content, filename, content_type)


async def register_webhook(settings: TelegramSettings, public_url: str, bot: Bot | None = None) -> str:
    """``setWebhook`` to ``<public_url>/webhooks/telegram`` with our secret; returns that URL.

    For ``lapor-gateway telegram set-webhook`` and deploy scripts. Without a
    ``bot`` one is made over a fresh HTTP client on ``settings.api_base``.
    """
    url = public_url.rstrip("/") + WEBHOOK_PATH
    if bot is None:
        async with httpx.AsyncClient(timeout=30) as client:
            return await register_webhook(settings, public_url, make_bot(settings, client))
    async with provider_errors("setWebhook"):
        await bot.set_webhook(
            url=url,
            secret_token=settings.secret_token.get_secret_value() or None,
            allowed_updates=ALLOWED_UPDATES,
            drop_pending_updates=False,
        )
    log.info(WEBHOOK_REGISTERED, url=url)
    return url
