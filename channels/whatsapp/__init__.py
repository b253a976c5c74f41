"""WhatsApp Business Cloud API (Meta): registry name ``whatsapp``, provider ``meta``.

Meta posts signed notifications to ``/webhooks/whatsapp`` (handshake and
signature are ``channels.meta``'s, shared with Messenger and Instagram); each
message in one becomes its own inbox row keyed by its wamid, each status its
own row that updates the outbox. Replies and media go through the Graph API
at ``{api_base}/{api_version}``. Operator docs: ``docs/channels/whatsapp.md``.
"""

from __future__ import annotations

from channels.base import ChannelAdapter
from channels.whatsapp.edge import router, sign, verify
from channels.whatsapp.graph import fetch_media, send
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
    receipts=receipts,
    fetch_media=fetch_media,
)

__all__ = [
    "ADAPTER",
    "WhatsAppSettings",
    "external_id",
    "fetch_media",
    "inbox_items",
    "parse",
    "receipts",
    "router",
    "send",
    "sign",
    "verify",
]
