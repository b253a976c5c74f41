"""Telegram bot (aiogram 3): registry name ``telegram``, provider ``telegram``.

Updates arrive by webhook (``/webhooks/telegram``, secret token checked) or
by our own getUpdates long-poll, and are stored raw, keyed
``<bot id>:<update_id>``. The worker parses them through aiogram's
Dispatcher (``handlers.py``); replies and media go through aiogram's Bot over
the gateway's httpx client. Operator docs: ``docs/channels/telegram.md``.

aiogram's types take seconds to import, so this module only names the
channel's parts and imports aiogram on first use: the CLI, and every gateway
that does not run Telegram, never pays for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from channels.base import ChannelAdapter, ChannelContext, InboxItem, Reply, Sent
from channels.telegram.settings import TelegramSettings
from normalizer.types import Attachment, ChannelMessage

if TYPE_CHECKING:
    from aiogram import Bot
    from fastapi import APIRouter

PROVIDER = "telegram"


def parse(raw: bytes, meta: Mapping[str, Any]) -> list[ChannelMessage]:
    from channels.telegram import handlers

    return handlers.parse(raw, meta)


def external_id(raw: bytes, meta: Mapping[str, Any]) -> str:
    from channels.telegram import edge

    return edge.external_id(raw, meta)


def inbox_item(raw: bytes, bot_id: str) -> InboxItem:
    from channels.telegram import edge

    return edge.inbox_item(raw, bot_id)


def router(settings: TelegramSettings, ctx: ChannelContext) -> APIRouter:
    from channels.telegram import edge

    return edge.router(settings, ctx)


async def service(settings: TelegramSettings, ctx: ChannelContext) -> None:
    from channels.telegram import edge

    await edge.service(settings, ctx)


async def send(reply: Reply, settings: TelegramSettings, client: Any) -> Sent:
    from channels.telegram import bot_api

    return await bot_api.send(reply, settings, client)


async def fetch_media(media: Mapping[str, Any], settings: TelegramSettings, ctx: ChannelContext) -> Attachment:
    from channels.telegram import bot_api

    return await bot_api.fetch_media(media, settings, ctx)


async def register_webhook(settings: TelegramSettings, public_url: str, bot: Bot | None = None) -> str:
    from channels.telegram import bot_api

    return await bot_api.register_webhook(settings, public_url, bot)


ADAPTER = ChannelAdapter(
    name="telegram",
    provider=PROVIDER,
    settings=TelegramSettings,
    parse=parse,
    external_id=external_id,
    send=send,
    router=router,
    service=service,
    fetch_media=fetch_media,
)

__all__ = [
    "ADAPTER",
    "TelegramSettings",
    "external_id",
    "fetch_media",
    "inbox_item",
    "parse",
    "register_webhook",
    "router",
    "send",
    "service",
]
