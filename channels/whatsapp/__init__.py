"""WhatsApp Business Cloud API (Meta): registry name ``whatsapp``, provider ``meta``.

Meta posts signed notifications to ``/webhooks/whatsapp``; each message in
one becomes its own inbox row keyed by its wamid, each status its own row
that updates the outbox. Replies and media go through the Graph API at
``{api_base}/{api_version}``. Operator docs: ``docs/channels/whatsapp.md``.
"""

from __future__ import annotations

from channels.base import ChannelAdapter
from channels.whatsapp.edge import router, sign, verify
from channels.whatsapp.graph import enrich, send
from channels.whatsapp.parse import PROVIDER, external_id, inbox_items, parse, receipts
from channels.whatsapp.settings import WhatsAppSettings

ADAPTER = ChannelAdapter(
    name="whatsapp",
    provider=PROVIDER,
    settings=WhatsAppSettings,
    parse=parse,
    external_id=external_id,
    send=send,
    router=router,
    enrich=enrich,
    receipts=receipts,
)

__all__ = [
    "ADAPTER",
    "WhatsAppSettings",
    "enrich",
    "external_id",
    "inbox_items",
    "parse",
    "receipts",
    "router",
    "send",
    "sign",
    "verify",
]
