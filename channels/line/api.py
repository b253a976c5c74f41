"""Calls to the LINE Messaging API: replies (reply token while fresh, else push) and message content."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Mapping
from typing import Any

import httpx
import structlog

from channels.base import ChannelContext, Reply, Sent
from channels.line.settings import LineSettings
from channels.media import fetch_media as fetch
from normalizer.errors import ProviderError, ProviderRejected, raise_for_provider_status
from normalizer.types import Attachment, ChannelMessage

log = structlog.get_logger(__name__)

REPLY_PATH = "/v2/bot/message/reply"
PUSH_PATH = "/v2/bot/message/push"
REPLY_TOKEN_REFUSED = "line.reply_token_refused"
PROFILE_UNAVAILABLE = "line.profile_unavailable"
PROFILE_TIMEOUT_S = 3.0
# Any fixed namespace: the retry key of a push is derived from the outbox row's idempotency key.
_RETRY_KEY_NAMESPACE = uuid.UUID("0d5e7c52-43a1-4b7e-9f51-6a5c4f0b2e11")


async def line_call(client: httpx.AsyncClient, method: str, url: str, token: str, **kwargs: Any) -> httpx.Response:
    """One authorised call; 5xx, 429 and network trouble are retryable, other 4xx are not."""
    headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    try:
        response = await client.request(method, url, headers=headers, **kwargs)
    except httpx.TransportError as exc:
        raise ProviderError(f"line: {method} {httpx.URL(url).path} failed: {type(exc).__name__}") from exc
    if response.status_code >= 400:
        raise_for_provider_status(response.status_code, f"line: {method} {httpx.URL(url).path}", _error(response))
    return response


def _error(response: httpx.Response) -> str:
    try:
        return str(response.json().get("message", ""))[:200]
    except (ValueError, AttributeError):
        return response.text[:200]


def _sent_id(response: httpx.Response) -> str | None:
    try:
        return str(response.json()["sentMessages"][0]["id"])
    except (ValueError, KeyError, IndexError, TypeError):
        return None  # older API versions answer {} — the reply went out all the same


def reply_token_fresh(reply: Reply, settings: LineSettings, now_s: float) -> bool:
    """A reply token is single-use and expires soon after the event; past the window push instead."""
    token = reply.extra.get("line_reply_token")
    event_at_ms = reply.extra.get("line_event_at_ms")
    if not token or not isinstance(event_at_ms, int):
        return False
    return now_s - event_at_ms / 1000 <= settings.reply_token_seconds


async def send(reply: Reply, settings: LineSettings, client: httpx.AsyncClient) -> Sent:
    token = settings.channel_access_token.get_secret_value()
    messages = [{"type": "text", "text": reply.text}]
    if reply_token_fresh(reply, settings, time.time()):
        body = {"replyToken": reply.extra["line_reply_token"], "messages": messages}
        try:
            response = await line_call(client, "POST", settings.api_url(REPLY_PATH), token, json=body)
            return Sent(provider_message_id=_sent_id(response))
        except ProviderRejected as exc:
            # Used already (an earlier try that LINE took but we never heard back from) or expired.
            log.info(REPLY_TOKEN_REFUSED, error=str(exc))
    # The retry key makes LINE drop a repeated push of the same reply (409 means it was sent already).
    retry_key = str(uuid.uuid5(_RETRY_KEY_NAMESPACE, reply.idempotency_key))
    body = {"to": reply.to, "messages": messages}
    try:
        response = await line_call(
            client, "POST", settings.api_url(PUSH_PATH), token, json=body, headers={"X-Line-Retry-Key": retry_key}
        )
    except ProviderRejected as exc:
        if " answered 409" in str(exc):
            return Sent(provider_message_id=None)
        raise
    return Sent(provider_message_id=_sent_id(response))


async def enrich(msg: ChannelMessage, settings: LineSettings, ctx: ChannelContext) -> ChannelMessage:
    """The sender's display name, which the webhook does not carry: ``GET /v2/bot/profile/{userId}``.

    A profile LINE will not give (not a friend of the account, an outage) is no reason to hold the
    complaint back: it is stored without a name.
    """
    user_id = msg.extra.get("line_user_id")
    if not user_id or msg.sender_name or msg.extra.get("greeting"):
        return msg
    url = settings.api_url(f"/v2/bot/profile/{user_id}")
    try:
        # Short: the complaint waits for this answer (media, by contrast, comes later in jobs of its own).
        response = await line_call(
            ctx.http, "GET", url, settings.channel_access_token.get_secret_value(), timeout=PROFILE_TIMEOUT_S
        )
        name = response.json().get("displayName")
    except (ProviderError, ProviderRejected, ValueError, AttributeError) as exc:
        log.info(PROFILE_UNAVAILABLE, error=str(exc))
        return msg
    return dataclasses.replace(msg, sender_name=str(name)) if name else msg


async def fetch_media(media: Mapping[str, Any], settings: LineSettings, ctx: ChannelContext) -> Attachment:
    """One photo, video, audio or file from the content API, in its own media job after the complaint.

    Through ``channels.media``: the access token goes only to the content host, the size is capped by
    ``media.max_bytes``. Content LINE no longer serves (a 4xx: it keeps it for a limited time) fails
    the job for good; an outage (5xx, 429) retries it.
    """
    url = settings.data_url(f"/v2/bot/message/{media['id']}/content")
    token = settings.channel_access_token.get_secret_value()
    fetched = await fetch(
        ctx.http,
        url,
        ctx.media,
        credential_hosts=[httpx.URL(settings.data_api_base).host],
        headers={"Authorization": f"Bearer {token}"},
    )
    content_type = (fetched.content_type or "").split(";")[0].strip() or None
    filename = media.get("filename") or _default_filename(str(media["id"]), content_type)
    return ctx.save_attachment(fetched.data, filename, content_type)


def _default_filename(message_id: str, content_type: str | None) -> str:
    subtype = (content_type or "application/octet-stream").split("/")[-1]
    return f"line-{message_id}.{subtype}"
