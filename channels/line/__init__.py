"""LINE Messaging API: registry name ``line``, provider ``line``.

LINE posts signed webhook bodies to ``/webhooks/line``; each event becomes
its own inbox row keyed by its ``webhookEventId``. Replies use the event's
reply token while it is fresh, else the push API; photos and files come from
the content API in media jobs after the complaint (``channels/media.py``).
Operator docs: ``docs/channels/line.md``.
"""

from __future__ import annotations

from channels.base import ChannelAdapter
from channels.line.api import enrich, fetch_media, send
from channels.line.edge import router, verify
from channels.line.parse import PROVIDER, external_id, inbox_items, parse
from channels.line.settings import LineSettings

ADAPTER = ChannelAdapter(
    name="line",
    provider=PROVIDER,
    settings=LineSettings,
    parse=parse,
    external_id=external_id,
    send=send,
    router=router,
    enrich=enrich,
    fetch_media=fetch_media,
)

__all__ = [
    "ADAPTER",
    "LineSettings",
    "enrich",
    "external_id",
    "fetch_media",
    "inbox_items",
    "parse",
    "router",
    "send",
    "verify",
]
