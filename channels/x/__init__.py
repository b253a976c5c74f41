"""X (Twitter) Account Activity API: registry name ``x``, provider ``x``.

X posts signed activity to ``/webhooks/x`` (and checks it with a CRC GET);
each DM and each tweet that mentions our account becomes its own inbox row.
Replies go out as DMs. Operator docs: ``docs/channels/x.md``.
"""

from __future__ import annotations

from channels.base import ChannelAdapter
from channels.x.api import send
from channels.x.edge import router, sign, verify
from channels.x.parse import PROVIDER, external_id, inbox_items, parse
from channels.x.settings import XSettings

ADAPTER = ChannelAdapter(
    name="x",
    provider=PROVIDER,
    settings=XSettings,
    parse=parse,
    external_id=external_id,
    send=send,
    router=router,
)

__all__ = ["ADAPTER", "XSettings", "external_id", "inbox_items", "parse", "router", "send", "sign", "verify"]
