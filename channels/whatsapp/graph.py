"""Calls to Meta's Graph API: sending replies and fetching media."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
import structlog

from channels.base import ChannelContext, Reply, Sent
from channels.whatsapp.settings import WhatsAppSettings
from normalizer.errors import ProviderError, ProviderRejected, raise_for_provider_status
from normalizer.types import Attachment, ChannelMessage

log = structlog.get_logger(__name__)

SEND_FAILED = "whatsapp.send_failed"
MEDIA_UNAVAILABLE = "whatsapp.media_unavailable"


async def graph_call(
    client: httpx.AsyncClient, method: str, url: str, token: str, json: dict[str, Any] | None = None
) -> httpx.Response:
    """One authorised call; 5xx, 429 and network trouble are retryable, other 4xx are not."""
    try:
        response = await client.request(method, url, json=json, headers={"Authorization": f"Bearer {token}"})
    except httpx.TransportError as exc:
        raise ProviderError(f"whatsapp: {method} {_path(url)} failed: {type(exc).__name__}") from exc
    if response.status_code >= 400:
        raise_for_provider_status(response.status_code, f"whatsapp: {method} {_path(url)}", _graph_error(response))
    return response


def _path(url: str) -> str:
    """The URL without host or query (media URLs carry signed query strings)."""
    return httpx.URL(url).path


def _graph_error(response: httpx.Response) -> str:
    try:
        error = response.json().get("error", {})
        return str(error.get("message") or error)
    except (ValueError, AttributeError):
        return response.text[:200]


async def send(reply: Reply, settings: WhatsAppSettings, client: httpx.AsyncClient) -> Sent:
    """A free-form text to the citizen (allowed within 24 h of their last message)."""
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
    response = await graph_call(client, "POST", url, settings.access_token.get_secret_value(), payload)
    try:
        message_id = str(response.json()["messages"][0]["id"])
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise ProviderError("whatsapp: send answered without messages[0].id") from exc
    return Sent(provider_message_id=message_id)


async def enrich(msg: ChannelMessage, settings: WhatsAppSettings, ctx: ChannelContext) -> ChannelMessage:
    """Download the message's media (id → short-lived URL → bytes) into attachments.

    A media id Meta no longer knows (a 4xx, e.g. after its 30-day retention) is
    logged and skipped: the complaint matters more than its photo. Outages
    raise ``ProviderError`` so the worker tries again.
    """
    attachments: list[Attachment] = []
    token = settings.access_token.get_secret_value()
    for media in msg.extra.get("media", []):
        try:
            described = (await graph_call(ctx.http, "GET", settings.graph_url(str(media["id"])), token)).json()
            download = await graph_call(ctx.http, "GET", str(described["url"]), token)
        except ProviderRejected as exc:
            log.warning(MEDIA_UNAVAILABLE, media_id=media["id"], error=str(exc))
            continue
        except (ValueError, KeyError, TypeError) as exc:
            raise ProviderError(f"whatsapp: media {media['id']} lookup answered without url") from exc
        content_type = media.get("mime_type") or described.get("mime_type")
        filename = media.get("filename") or _default_filename(str(media["id"]), content_type)
        attachments.append(ctx.save_attachment(download.content, filename, content_type))
    if not attachments:
        return msg
    return dataclasses.replace(msg, attachments=(*msg.attachments, *attachments))


def _default_filename(media_id: str, content_type: str | None) -> str:
    subtype = (content_type or "application/octet-stream").split(";")[0].split("/")[-1]
    return f"whatsapp-{media_id}.{subtype}"
