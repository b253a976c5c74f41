"""WhatsApp's calls to Meta's Graph API: sending replies and fetching media."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from channels.base import ChannelContext, Reply, Sent
from channels.meta.graph import download, graph_call
from channels.meta.window import check_window
from channels.whatsapp.settings import WhatsAppSettings
from normalizer.errors import ProviderError
from normalizer.types import Attachment

PRODUCT = "whatsapp"


async def send(reply: Reply, settings: WhatsAppSettings, client: httpx.AsyncClient) -> Sent:
    """A free-form text to the citizen (allowed within 24 h of their last message)."""
    check_window(reply.extra, datetime.now(UTC), PRODUCT)
    payload: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "type": "text",
        "text": {"preview_url": False, "body": reply.text},
    }
    # A wa_id is digits; a user who hides the number is reached by business-scoped id.
    if reply.to.lstrip("+").isdigit():
        payload["to"] = reply.to.lstrip("+")
    else:
        payload["recipient"] = reply.to
    if reply.extra.get("wamid"):
        payload["context"] = {"message_id": reply.extra["wamid"]}
    url = settings.graph_url(f"{settings.phone_number_id}/messages")
    response = await graph_call(client, "POST", url, settings.access_token.get_secret_value(), PRODUCT, payload)
    try:
        message_id = str(response.json()["messages"][0]["id"])
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise ProviderError("whatsapp: send answered without messages[0].id") from exc
    return Sent(provider_message_id=message_id)


async def fetch_media(media: Mapping[str, Any], settings: WhatsAppSettings, ctx: ChannelContext) -> Attachment:
    """One media id: Graph gives a short-lived URL, downloaded with the bearer token on Meta's hosts only.

    A media id Meta no longer knows (a 4xx, e.g. after its 30-day retention) fails
    the job for good; outages raise ``ProviderError`` so the job tries again.
    """
    token = settings.access_token.get_secret_value()
    lookup = await graph_call(ctx.http, "GET", settings.graph_url(str(media["id"])), token, PRODUCT)
    try:
        described = lookup.json()
        url = str(described["url"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ProviderError(f"whatsapp: media {media['id']} lookup answered without url") from exc
    hosts = [httpx.URL(settings.api_base).host, *settings.media_hosts]
    fetched = await download(ctx, url, settings, hosts)
    content_type = media.get("mime_type") or described.get("mime_type") or fetched.content_type
    filename = media.get("filename") or _default_filename(str(media["id"]), content_type)
    return ctx.save_attachment(fetched.data, filename, content_type)


def _default_filename(media_id: str, content_type: str | None) -> str:
    subtype = (content_type or "application/octet-stream").split(";")[0].split("/")[-1]
    return f"whatsapp-{media_id}.{subtype}"
