"""Telegram bot (aiogram 3): registry name ``telegram``, provider ``telegram``.

Updates arrive by webhook (``/webhooks/telegram``, secret token checked) or
by our own getUpdates long-poll, and are stored raw, keyed
``<bot id>:<update_id>``. The worker parses them through aiogram's
Dispatcher (``handlers.py``); replies and media go through aiogram's Bot over
the gateway's httpx client. Operator docs: ``docs/channels/telegram.md``.
"""

from __future__ import annotations

from channels.base import ChannelAdapter
from channels.telegram.bot_api import enrich, register_webhook, send
from channels.telegram.edge import external_id, inbox_item, router, service
from channels.telegram.handlers import PROVIDER, parse
from channels.telegram.settings import TelegramSettings

ADAPTER = ChannelAdapter(
    name="telegram",
    provider=PROVIDER,
    settings=TelegramSettings,
    parse=parse,
    external_id=external_id,
    send=send,
    router=router,
    service=service,
    enrich=enrich,
)

__all__ = [
    "ADAPTER",
    "TelegramSettings",
    "enrich",
    "external_id",
    "inbox_item",
    "parse",
    "register_webhook",
    "router",
    "send",
    "service",
]
